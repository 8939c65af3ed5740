"""Fakes that implement grpc_lite's injection Protocols (Clock, DnsLookup, ...)."""
