"""Prints the interop matrix collected by test_matrix.py at the end of the run."""

from __future__ import annotations

from typing import Any

from tests.peers.matrix import Column, markdown

MATRIX: list[Column] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MATRIX:
        terminalreporter.section("interop matrix (case x server x transport)")
        terminalreporter.write_line(markdown(MATRIX))
