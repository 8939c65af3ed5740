"""The test layout (docs/architecture.md "Tests"): unit tests mirror the package
(``tests/<pkg>/test_<module>.py``), loopback end-to-end tests live under ``tests/e2e/<area>/``,
and no test file name exists twice, so "where is the test for X" has one answer."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).parent


def _test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "protos" not in p.parts)


def test_no_test_file_name_exists_twice() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in _test_files():
        seen[path.name].append(str(path.relative_to(TESTS)))
    assert not {n: p for n, p in seen.items() if len(p) > 1}


def _marks_integration(path: Path) -> bool:
    """Whether the module marks any test ``integration`` (talks to a real server)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "integration":
            value = node.value
            if isinstance(value, ast.Attribute) and value.attr == "mark":
                return True
    return False


def test_loopback_tests_live_under_e2e() -> None:
    """A test module that starts real servers (marked ``integration``) is an end-to-end
    test: it lives in ``tests/e2e/<area>/``; everything else there is one."""
    e2e = TESTS / "e2e"
    outside = [
        str(p.relative_to(TESTS))
        for p in _test_files()
        if _marks_integration(p) and e2e not in p.parents
    ]
    assert not outside, f"move these under tests/e2e/: {outside}"
    for path in e2e.rglob("test_*.py"):
        assert path.parent.parent == e2e, f"{path}: tests/e2e/<area>/test_*.py"


def test_every_test_folder_is_a_package() -> None:
    """So that test modules are imported by their full dotted name."""
    for path in _test_files():
        for folder in path.relative_to(TESTS).parents:
            if folder != Path("."):
                assert (TESTS / folder / "__init__.py").exists(), folder
