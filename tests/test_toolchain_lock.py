"""The test toolchain is locked: every direct requirement of the extras that
``scripts/test`` installs is pinned exactly in pyproject.toml, and constraints.txt (which
also pins what they pull in) has the same version, as has the build backend."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;]+)$")


def _locked() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if m:
            found[_norm(m.group(1))] = m.group(2)
    return found


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_extra_scripts_test_installs_is_pinned_and_locked() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = (ROOT / "scripts" / "extras").read_text().strip().split(",")
    optional = project["project"]["optional-dependencies"]
    locked = _locked()
    checked = 0
    for extra in extras:
        for requirement in optional[extra]:
            m = _PIN.match(requirement)
            assert m, f"[{extra}] {requirement!r} is not pinned with =="
            name, version = _norm(m.group(1)), m.group(2)
            assert locked.get(name) == version, (
                f"[{extra}] {requirement}: constraints.txt has {locked.get(name)!r}; "
                "run bash scripts/lock"
            )
            checked += 1
    assert checked >= 20


def test_the_build_backend_is_the_locked_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (backend,) = project["build-system"]["requires"]
    m = _PIN.match(backend)
    assert m, f"build backend {backend!r} is not pinned"
    assert _locked().get(_norm(m.group(1))) == m.group(2)
