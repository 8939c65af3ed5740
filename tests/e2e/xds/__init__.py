"""Loopback end-to-end tests of xDS (`xds:///` targets) against the rig of tests/peers/xds.py."""
