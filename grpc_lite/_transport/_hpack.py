"""A context-free HPACK encoder for request headers (RFC 7541).

Every field is sent as a static-table reference or a literal *without indexing*,
so the encoder never touches the dynamic table.  That makes an encoded block a
pure function of its fields: the per-method part of a request (pseudo-headers,
``te``, ``content-type``, ``user-agent``) is encoded once per multi-callable and
reused for every call, and only ``grpc-timeout`` and user metadata are encoded
per call.  The first block on a connection starts with a dynamic table size
update to 0 (RFC 7541 4.2), so later SETTINGS_HEADER_TABLE_SIZE changes from the
server never need signalling.

Decoding uses the ``hpack`` package, which keeps the server's dynamic table.
"""

from collections.abc import Iterable, Sequence

# RFC 7541 Appendix A: the static entries a gRPC request can use.
_STATIC_FULL: dict[tuple[str, str], int] = {
    (":method", "GET"): 2,
    (":method", "POST"): 3,
    (":path", "/"): 4,
    (":scheme", "http"): 6,
    (":scheme", "https"): 7,
}
_STATIC_NAME: dict[str, int] = {
    ":authority": 1,
    ":method": 2,
    ":path": 4,
    ":scheme": 6,
    "accept-encoding": 16,
    "content-type": 31,
    "user-agent": 58,
}

TABLE_SIZE_ZERO = b"\x20"


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes) -> bytes:
    n = len(data)
    if n < 127:
        return bytes((n,)) + data
    return _integer(n, 7, 0) + data


def encode_field(name: str, value: str | bytes) -> bytes:
    """One header field, static-indexed when possible, else literal without indexing."""
    raw = value.encode("latin-1") if isinstance(value, str) else value
    full = _STATIC_FULL.get((name, raw.decode("latin-1")))
    if full is not None:
        return bytes((0x80 | full,))
    idx = _STATIC_NAME.get(name)
    if idx is not None:
        return _integer(idx, 4, 0) + _string(raw)
    return b"\x00" + _string(name.encode("ascii")) + _string(raw)


def encode_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    return b"".join([encode_field(n, v) for n, v in fields])


# Header list size (RFC 9113 6.5.2, SETTINGS_MAX_HEADER_LIST_SIZE): each field counts the
# octets of its name and value plus 32, as an HPACK table entry does (RFC 7541 4.1). The
# client checks a request against the server's limit before sending it (RFC 9113 10.5.1).
FIELD_OVERHEAD = 32


def field_size(name: str, value: str) -> int:
    """One field's size in the header list (latin-1 text: one octet per character)."""
    return len(name) + len(value) + FIELD_OVERHEAD


def encode_sized(fields: Sequence[tuple[str, str]]) -> tuple[bytes, int]:
    """``fields`` as one block, and their size in the header list."""
    block = b"".join([encode_field(n, v) for n, v in fields])
    return block, sum([len(n) + len(v) for n, v in fields]) + FIELD_OVERHEAD * len(fields)


# grpc-timeout: a literal field without indexing with a new name; only the value varies
# per call (the remaining time), so the name part is encoded once.
_TIMEOUT_PREFIX = b"\x00" + _string(b"grpc-timeout")
_TIMEOUT_SIZE = field_size("grpc-timeout", "")


def encode_timeout_field(value: str) -> tuple[bytes, int]:
    """The ``grpc-timeout`` field (the value is at most 9 ASCII characters), and its size in
    the header list."""
    return (
        _TIMEOUT_PREFIX + bytes((len(value),)) + value.encode("ascii"),
        _TIMEOUT_SIZE + len(value),
    )
