"""The live progress line: rate, p50/p99 of the last second, errors, and a progress bar.

``bar`` draws it with ``rich`` on a terminal (stderr) and replaces it every second;
``lines`` prints one plain line per second (CI logs); ``off`` prints nothing.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ._engine import Interval
from ._histogram import percentile_of_sparse
from ._report import nano_unit

__all__ = ["Progress"]


def _line(iv: Interval, seconds: float, total_count: int, total_errors: int) -> str:
    p50 = nano_unit(percentile_of_sparse(iv.counts, 50)) if iv.counts else "-"
    p99 = nano_unit(percentile_of_sparse(iv.counts, 99)) if iv.counts else "-"
    rate = iv.count / seconds if seconds > 0 else 0.0
    text = (
        f"[{iv.index + 1:>4}s] {rate:>9,.0f} req/s  p50 {p50:>9}  p99 {p99:>9}  "
        f"errors {iv.errors:<5} total {total_count:,} ({total_errors:,} errors)"
    )
    if iv.messages:
        text += f"  stream msgs {iv.messages / seconds:,.0f}/s"
    return text


class Progress:
    def __init__(
        self,
        mode: str,
        *,
        total: int | None,
        duration: float | None,
        interval: float = 1.0,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "off"
        self.mode = mode
        self.total = total
        self.duration = duration
        self.interval = interval
        self.count = 0
        self.errors = 0
        self._live: Any = None
        self._console: Any = None

    def start(self) -> None:
        if self.mode != "bar":
            return
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=self.stream)
        self._live = Live(
            "starting...", console=self._console, refresh_per_second=4, transient=True
        )
        self._live.start()

    def update(self, iv: Interval) -> None:
        self.count += iv.count
        self.errors += iv.errors
        if self.mode == "off":
            return
        line = _line(iv, self.interval, self.count, self.errors)
        if self.mode == "lines":
            print(line, file=self.stream, flush=True)
            return
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.text import Text

        if self.total:
            done, total = float(self.count), float(self.total)
        elif self.duration:
            done, total = min((iv.index + 1) * self.interval, self.duration), self.duration
        else:
            done, total = 0.0, 0.0
        parts: list[Any] = [Text(line)]
        if total:
            parts.append(ProgressBar(total=total, completed=done, width=60))
        self._live.update(Group(*parts))

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
