"""The HTML report in a real headless browser (Debian's chromium; .ci/run installs it).

One run against two Backends through round_robin writes ``-O json``; the same report is
rendered with ``--report-from ... -O html``. Chromium loads the file with networking off,
runs its inline script and dumps the DOM: every number the page shows must be the JSON's.
A screenshot shows the page is drawn (not blank).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from grpc_lite._load._report import nano_unit
from grpc_lite.testing import Backend
from tests.e2e.load._cli import load

pytestmark = [pytest.mark.integration]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Dom(HTMLParser):
    """Elements by id (attributes and text), every <rect>/<polyline>, the body's attrs."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, Any]] = {}
        self.rects: list[dict[str, str]] = []
        self.polylines: list[dict[str, str]] = []
        self.rows: list[dict[str, Any]] = []
        self.body: dict[str, str] = {}
        self.svgs: list[str] = []
        self._open: list[dict[str, Any]] = []
        self._svg: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        node: dict[str, Any] = {"tag": tag, "attrs": a, "text": ""}
        if tag == "body":
            self.body = a
        if tag == "svg":
            self._svg = a.get("id", "")
            self.svgs.append(self._svg)
        if tag == "rect":
            self.rects.append({**a, "svg": self._svg or ""})
        if tag == "polyline":
            self.polylines.append({**a, "svg": self._svg or ""})
        if tag == "tr":
            self.rows.append(node)
        if "id" in a:
            self.by_id[a["id"]] = node
        if tag not in ("rect", "polyline", "circle", "line", "meta", "br", "path"):
            self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        for node in self._open:
            node["text"] += data

    def text(self, element_id: str) -> str:
        return " ".join(str(self.by_id[element_id]["text"]).split())

    def value(self, element_id: str) -> str:
        return str(self.by_id[element_id]["attrs"]["data-value"])


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, "HOME": str(profile)},
    )


@pytest.mark.timeout(120)
async def test_html_report_in_headless_chromium(tmp_path: Path) -> None:
    assert CHROMIUM is not None, "chromium is not installed (.ci/run installs Debian's chromium)"
    async with Backend() as one, Backend() as two:
        target = f"ipv4:{one.address},{two.address}"
        json_path = tmp_path / "report.json"
        out = await load(
            target, "--insecure", "--call", "helloworld.Greeter/SayHello", "--lb", "round_robin",
            "--rps", "300", "-z", "2500ms", "-c", "8", "--cpus", "1", "--name", "html check",
            "-O", "json", "-o", str(json_path),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    report = json.loads(json_path.read_text())
    lite = report["grpcLite"]
    html_path = tmp_path / "report.html"
    out = await load("--report-from", str(json_path), "-O", "html", "-o", str(html_path))
    assert out.returncode == 0, out.stderr
    page = html_path.read_text()
    # Nothing to fetch: no external scripts, styles, images or fonts.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page

    dumped = _chromium("--dump-dom", html_path.as_uri(), profile=tmp_path / "profile")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = _Dom()
    dom.feed(dumped.stdout)
    assert dom.body.get("data-ready") == "true"  # the inline script ran without an error

    assert dom.value("summary-count") == str(report["count"])
    assert dom.text("summary-count") == f"{report['count']:,}"
    assert dom.text("summary-rps") == f"{report['rps']:.2f}"
    for key in ("total", "slowest", "fastest", "average"):
        assert dom.value(f"summary-{key}") == str(report[key])
        assert dom.text(f"summary-{key}") == nano_unit(report[key])
    assert dom.value("summary-errors") == "0"
    for item in lite["latencyDistribution"]:
        cell = f"p{item['percentage']:g}"
        assert dom.value(cell) == str(item["latency"])
        assert dom.text(cell) == nano_unit(item["latency"])

    bars = [r for r in dom.rects if r["svg"] == "chart-histogram"]
    assert [float(b["data-value"]) for b in bars] == [b["count"] for b in report["histogram"]]
    backend_bars = {
        r["data-label"]: float(r["data-value"]) for r in dom.rects if r["svg"] == "chart-backends"
    }
    assert backend_bars == {a: float(b["attempts"]) for a, b in lite["backends"].items()}
    assert len(backend_bars) == 2
    rows = {r["attrs"]["data-backend"]: r for r in dom.rows if "data-backend" in r["attrs"]}
    for address, b in lite["backends"].items():
        assert rows[address]["text"] == f"{address}{b['attempts']:,}{b['ok']:,}{b['failed']:,}"
    status_rows = {r["attrs"]["data-status"]: r for r in dom.rows if "data-status" in r["attrs"]}
    assert set(status_rows) == set(report["statusCodeDistribution"])
    ok = report["statusCodeDistribution"]["OK"]
    assert status_rows["OK"]["text"] == f"OK{ok:,}{100 * ok / report['count']:.2f} %"

    seconds = len(lite["timeline"])
    assert seconds >= 2
    lines = {(p["svg"], p["data-series"]): p["points"].split() for p in dom.polylines}
    assert len(lines[("chart-latency-time", "p50 ms")]) == seconds
    assert len(lines[("chart-rps-time", "requests/s")]) == seconds
    assert {"chart-histogram", "chart-latency-time", "chart-rps-time", "chart-backends"} <= set(
        dom.svgs
    )

    shot = tmp_path / "report.png"
    taken = _chromium(
        f"--screenshot={shot}", "--window-size=1100,1800", html_path.as_uri(),
        profile=tmp_path / "profile2",
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, bars and lines were drawn
