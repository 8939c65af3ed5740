"""Response header blocks: HPACK decoding with a cache, and the checks of RFC 9113 8.2, 8.3.

grpc-go counterpart: the header-frame half of ``internal/transport/http2_client.go``
(``operateHeaders``) with x/net/http2's field checks.

:class:`HeaderDecoder` is owned by one :class:`~._connection.Connection` and called only by
it, from its receive path (the HPACK table is per connection and order matters).
:class:`HeaderBlock` is what the connection hands to a stream's ``_on_headers``.
"""

import re

import hpack
import hpack.exceptions

from . import _frames as fr

# Bytes that, alone in a header block, each encode one indexed field (RFC 7541 6.1).
_INDEXED_BYTES = bytes(range(0x81, 0xFF))
# Decoded blocks kept per connection (table-neutral blocks only, see HeaderDecoder).
_CACHE_MAX = 256

# Where a response is, as far as HTTP/2 header blocks go (``H2Stream._phase``): waiting for
# the response headers (informational 1xx blocks keep it there), or past them, where the
# only block left is the trailers.
_PHASE_HEADERS = 1
_PHASE_TRAILERS = 2
_PHASE_MALFORMED = 0  # a block valid nowhere (HeaderBlock.valid_in)
_NO_STATUS = 'missing ":status" pseudo-header'
_STATUS_IN_TRAILERS = 'pseudo-header ":status" in trailers'

# RFC 9113 8.2.1 and RFC 9110 5.1: a field name is a token, in lower case on the HTTP/2
# wire (grpc-go, through x/net/http2, accepts exactly these).
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+").fullmatch
# RFC 9113 8.2.1: a value with NUL, CR or LF, or starting or ending with SP or HTAB, is
# malformed; like grpc-go, so is one with any other control character but HTAB (RFC 9110
# 5.5 makes them invalid too).  0x80-0xFF stay valid (obs-text; PROTOCOL-HTTP2.md,
# ASCII-Value).  Only grpc-message may have surrounding whitespace (see _check_fields).
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|\A[ \t]|[ \t]\Z").search
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]").search
# RFC 9113 8.2.2: connection-specific fields; ``te`` is allowed only as "trailers".
_CONNECTION_SPECIFIC = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)
_REQUEST_PSEUDO = frozenset({":method", ":scheme", ":authority", ":path", ":protocol"})
# RFC 9110 15: a status code is three digits.
_STATUSES = frozenset(f"{code:03d}" for code in range(1000))
# Regular fields already found valid (a pure function of name and value): the usual ones
# (content-type, grpc-status 0, ...) then cost a set lookup when a block is checked.  Small
# values only, and cleared when full, so it stays small.
_VALID_FIELDS: set[tuple[str, str]] = set()
_VALID_FIELDS_MAX = 1024
_VALID_FIELD_VALUE_MAX = 128


def _quote(text: str) -> str:
    """A field name for an error message, quoted like Go's %q (control bytes escaped)."""
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


class HeaderBlock:
    """One decoded header block.  Identical blocks that leave the HPACK table alone
    are decoded once and shared (see :class:`HeaderDecoder`), so ``parsed``
    lets the stream layer cache its own reading of the fields too.

    The block is checked once, here, against the rules for a response of RFC 9113 8.2
    and 8.3 that need no context: ``problem`` names the first violation (None when there
    is none), ``valid_in`` says where in a response the block may come (the response
    headers, which carry ``:status``, or the trailers, which carry no pseudo-header; 0
    when malformed) and ``then`` where the response is after it (1xx blocks leave it
    waiting for the real headers)."""

    __slots__ = ("fields", "parsed", "problem", "then", "valid_in")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        self.parsed: object = None
        status, problem = _check_fields(fields)
        self.problem = problem
        if problem is not None:
            self.valid_in = self.then = _PHASE_MALFORMED
        elif status is None:
            self.valid_in = self.then = _PHASE_TRAILERS
        else:
            self.valid_in = _PHASE_HEADERS
            self.then = _PHASE_HEADERS if status[0] == "1" else _PHASE_TRAILERS

    def malformed_message(self, phase: int) -> str:
        """Why this block is malformed where it came (``phase``: the stream's phase), for
        the stream error of RFC 9113 8.1.1."""
        if phase == _PHASE_HEADERS:
            return f"malformed response headers: {self.problem or _NO_STATUS}"
        return f"malformed trailers: {self.problem or _STATUS_IN_TRAILERS}"


def _check_fields(fields: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """``(:status value, first problem)`` of a response header block (RFC 9113 8.2.1,
    8.2.2, 8.3, 8.3.2).  The messages follow grpc-go's (x/net/http2) where it has one."""
    status: str | None = None
    regular = False
    valid = _VALID_FIELDS
    for field in fields:
        name = field[0]
        if name[:1] == ":":
            if name != ":status" or regular or status is not None or field[1] not in _STATUSES:
                return status, _pseudo_problem(name, field[1], regular)
            status = field[1]
            continue
        regular = True
        if field in valid:
            continue
        problem = _field_problem(name, field[1])
        if problem is not None:
            return status, problem
        if len(field[1]) <= _VALID_FIELD_VALUE_MAX:
            if len(valid) >= _VALID_FIELDS_MAX:
                valid.clear()
            valid.add(field)
    return status, None


def _pseudo_problem(name: str, value: str, after_regular: bool) -> str:
    if after_regular:
        return f"pseudo-header field {_quote(name)} after regular header fields"
    if name in _REQUEST_PSEUDO:
        return f"request pseudo-header {_quote(name)} in a response"
    if name != ":status":
        return f"invalid pseudo-header {_quote(name)}"
    if value in _STATUSES:
        return 'duplicate pseudo-header ":status"'
    return f'invalid ":status" value {_quote(value)}'


def _field_problem(name: str, value: str) -> str | None:
    """What is wrong with one regular field, or None."""
    if _FIELD_NAME(name) is None:
        return f"invalid header field name {_quote(name)}"
    if name in _CONNECTION_SPECIFIC or (name == "te" and value != "trailers"):
        return f"connection-specific header field {_quote(name)}"
    if value and _BAD_VALUE(value) is not None:
        if _CONTROL(value) is not None:
            return f"invalid header field value for {_quote(name)} (control character)"
        if name != "grpc-message":
            # grpc-message is exempt: gRPC servers (grpc-go, grpc-java, C-core) send a
            # status message's spaces unescaped, and their clients take it as is.
            return f"invalid header field value for {_quote(name)} (leading or trailing whitespace)"
    return None


class HeaderDecoder:
    """One connection's HPACK decoder (RFC 7541), with a cache of decoded blocks.

    A block whose every byte is in 0x81-0xFE is a run of one-byte *indexed* fields (RFC
    7541 6.1): decoding it reads the dynamic table but never changes it, so its result
    stays valid until some other block is decoded.  Servers send such blocks for nearly
    every response once their table is warm (``:status 200``, ``content-type``,
    ``grpc-status 0``).  Any other block may insert or evict entries, which renumbers the
    dynamic table, so it clears the cache.

    Who may call: the owning connection only, in the order blocks arrive.  Its hot path
    looks ``cache`` up itself (the dict is shared) and calls :meth:`decode_uncached` on a
    miss; everything else calls :meth:`decode`.
    """

    __slots__ = ("_hpack", "cache", "max_header_list_size")

    def __init__(self, max_header_list_size: int) -> None:
        self._hpack = hpack.Decoder(max_header_list_size=max_header_list_size)
        self._hpack.max_allowed_table_size = 4096
        self.max_header_list_size = max_header_list_size
        self.cache: dict[bytes, HeaderBlock] = {}

    def decode(self, block: bytes) -> HeaderBlock:
        """HPACK-decode ``block`` (from the cache when it cannot change the table)."""
        return self.cache.get(block) or self.decode_uncached(block)

    def decode_uncached(self, block: bytes) -> HeaderBlock:
        """``decode`` for a block not in the cache (only table-neutral blocks are ever
        cached, so a hit needs no other check).  Raises FrameError on a bad block."""
        cache = self.cache
        if cache and block.translate(None, _INDEXED_BYTES):
            cache.clear()
        try:
            raw = self._hpack.decode(block, raw=True)
        except hpack.exceptions.OversizedHeaderListError as exc:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"header list too large: {exc}") from None
        except (hpack.exceptions.HPACKError, IndexError, ValueError) as exc:
            raise fr.FrameError(fr.COMPRESSION_ERROR, f"HPACK decoding failed: {exc}") from None
        decoded = HeaderBlock([(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw])
        if not block.translate(None, _INDEXED_BYTES) and len(cache) < _CACHE_MAX:
            cache[block] = decoded
        return decoded
