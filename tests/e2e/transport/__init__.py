"""Frame-level tests of the client against the scripted HTTP/2 peer
(tests/h2peer.py), and the transport's asyncio edge on real sockets."""
