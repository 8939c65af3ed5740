"""Integrations of grpc_lite with other tools (``grpc_lite.contrib.locust``)."""
