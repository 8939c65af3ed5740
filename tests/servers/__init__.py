"""grpcio servers for integration tests (see harness.py; fixtures live in tests/conftest.py)."""
