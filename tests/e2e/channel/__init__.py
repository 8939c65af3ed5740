"""The channel end to end against real servers: lifecycle, transports (TLS, Unix
sockets), call credentials, interceptors, event loops and fork, HTTP CONNECT through
tinyproxy."""
