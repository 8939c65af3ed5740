"""Loopback end-to-end tests: real servers and processes, one folder per area."""
