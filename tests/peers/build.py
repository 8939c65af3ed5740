"""Build every peer server: ``python -m tests.peers.build`` (scripts/test runs it first).

One line per peer with the time it took; a peer module that does not exist (yet) is
skipped; a failed build exits non-zero naming the peer.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time

from tests.peers._base import PeerError

PEERS = ("go", "java", "node", "xds")


def main() -> int:
    failed: list[str] = []
    for short in PEERS:
        module_name = f"{__package__ or 'tests.peers'}.{short}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module exists but something it imports does not
            print(f"{short}: no {module_name} module, skipped", flush=True)
            continue
        name = getattr(module, "NAME", short)
        started = time.monotonic()
        try:
            module.build()
        except (PeerError, OSError, subprocess.SubprocessError) as exc:
            print(f"{name}: FAILED after {time.monotonic() - started:.1f} s: {exc}", flush=True)
            failed.append(name)
            continue
        print(f"{name}: built in {time.monotonic() - started:.1f} s", flush=True)
    if failed:
        print(f"peer build failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
