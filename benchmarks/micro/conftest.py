"""pytest-benchmark micro-benchmarks for grpc_lite's hot-path pieces.

Run: ``python -m pytest benchmarks/micro --benchmark-only`` (see benchmarks/README.md).
They are not part of the test suite (pytest's testpaths is ``tests``).
"""
