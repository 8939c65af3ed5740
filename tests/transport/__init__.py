"""Unit tests of grpc_lite/_transport: the sans-IO connection (against the sans-IO h2
server in tests/fakes/h2server.py), frames, HPACK, keepalive."""
