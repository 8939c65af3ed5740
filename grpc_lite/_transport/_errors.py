"""The transport's error type, below every module that raises it (the protocol and the
HTTP CONNECT tunnel), so that neither has to import the other for it."""

__all__ = ["TransportError"]


class TransportError(ConnectionError):
    """A connection attempt failed; the message says why."""
