"""gRPC status codes, the RpcError exception and status-related wire helpers (L0).

Pure functions only: no I/O, no asyncio. Stdlib only. ``grpc_lite.metadata`` may import this
module; this module must not import ``grpc_lite.metadata`` at import time (see
``RpcError.initial_metadata``), so there is no import cycle.

Spec sources: doc/statuscodes.md, doc/http-grpc-status-mapping.md, PROTOCOL-HTTP2 (Status,
Status-Message), gRFC A54 (restricted control-plane codes).
"""

import enum
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grpc_lite.metadata import Metadata

__all__ = [
    "AioRpcError",
    "RpcError",
    "StatusCode",
    "UsageError",
    "decode_grpc_message",
    "encode_grpc_message",
    "parse_grpc_status",
    "restrict_control_plane_code",
    "status_from_http",
]


class StatusCode(enum.IntEnum):
    """The 17 gRPC status codes; ``int(code)`` is the number carried in ``grpc-status``.

    ``str(code)`` is ``"StatusCode.NAME"`` as with grpcio's ``grpc.StatusCode`` (plain
    ``IntEnum`` would give the number), so messages formatted with ``f"{code}"`` read the same
    as under grpcio. ``format(code, "d")`` still gives the number.
    """

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    def __str__(self) -> str:
        return f"StatusCode.{self.name}"

    def __format__(self, format_spec: str) -> str:
        if not format_spec:
            return f"StatusCode.{self.name}"
        return int.__format__(int(self), format_spec)

    # Code written for grpcio (interceptors such as opentelemetry-instrumentation-grpc's,
    # error handlers) reads grpcio's ``code.value``, the tuple ``(14, "unavailable")``, and
    # compares with ``grpc.StatusCode.UNAVAILABLE``. Both work on grpc_lite's codes too.

    @property
    def value(self) -> "CodeValue":
        """The number, as an ``int`` that also reads as grpcio's ``(number, "name")``."""
        return _CODE_VALUES[int(self)]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            return int(self) == int(other)
        number = _grpcio_code_number(other)
        if number is None:
            return NotImplemented
        return int(self) == number

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = int.__hash__  # as an int's: a code and its number are one dict key


class CodeValue(int):
    """``StatusCode.X.value``: the code's number (an ``int``, equal to it) that also reads as
    grpcio's value, the tuple ``(number, "name")``: ``value[0]``, ``value[1]``, ``number, name
    = value``, ``value == (14, "unavailable")``."""

    def _pair(self) -> tuple[int, str]:
        return int(self), StatusCode(int(self)).name.lower().replace("_", " ")

    def __getitem__(self, index: int) -> int | str:
        return self._pair()[index]

    def __iter__(self) -> Iterator[int | str]:
        return iter(self._pair())

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple):
            return self._pair() == other
        return int.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = int.__hash__


_CODE_VALUES = {int(code): CodeValue(int(code)) for code in StatusCode}


def _grpcio_code_number(other: object) -> int | None:
    """The number of a grpcio ``grpc.StatusCode`` (None for anything else); grpcio is never
    imported for it."""
    grpc = sys.modules.get("grpc")
    grpc_codes = getattr(grpc, "StatusCode", None)
    if grpc_codes is None or not isinstance(other, grpc_codes):
        return None
    number = other.value[0]
    return number if isinstance(number, int) else None


class RpcError(Exception):
    """A failed RPC, as grpc.aio's ``AioRpcError``.

    Raised by awaiting a call, iterating it or ``read()``. Immutable once built; any coroutine
    may read it.

    When grpcio is loaded in the process (``grpc.aio`` imported, as it must be for code that
    names ``grpc.aio.AioRpcError``), each error is made an instance of a subclass that also
    derives from ``grpc.aio.AioRpcError`` (so from ``grpc.RpcError``): ``except
    grpc.aio.AioRpcError`` and ``isinstance(e, grpc.RpcError)`` in code written for grpc.aio
    (interceptors such as opentelemetry-instrumentation-grpc's, error handlers) see it. Its
    name, methods and pickling stay grpc_lite's; grpcio is never imported for it.
    """

    __slots__ = (
        "_code",
        "_debug_error_string",
        "_details",
        "_initial_metadata",
        "_trailing_metadata",
    )

    def __new__(cls, *args: Any, **kwargs: Any) -> "RpcError":
        aio = sys.modules.get("grpc.aio")
        grpc_error = getattr(aio, "AioRpcError", None) if aio is not None else None
        if isinstance(grpc_error, type) and not issubclass(cls, grpc_error):
            cls = _grpcio_compatible(cls, grpc_error)
        return super().__new__(cls, *args)

    def __init__(
        self,
        code: StatusCode,
        details: str | None = None,
        initial_metadata: "Metadata | None" = None,
        trailing_metadata: "Metadata | None" = None,
        debug_error_string: str | None = None,
    ) -> None:
        super().__init__(code, details)
        self._code = code
        self._details = details
        self._initial_metadata = initial_metadata
        self._trailing_metadata = trailing_metadata
        self._debug_error_string = debug_error_string

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def initial_metadata(self) -> "Metadata":
        md = self._initial_metadata
        if md is None:
            # Local import: metadata.py may import this module, never the other way round at
            # import time.
            from grpc_lite.metadata import Metadata

            return Metadata()
        return md

    def trailing_metadata(self) -> "Metadata":
        md = self._trailing_metadata
        if md is None:
            from grpc_lite.metadata import Metadata

            return Metadata()
        return md

    def debug_error_string(self) -> str | None:
        return self._debug_error_string

    def __str__(self) -> str:
        lines = [
            f"<{type(self).__name__} of RPC that terminated with:",
            f"\tstatus = {self._code}",
            f'\tdetails = "{self._details}"',
        ]
        if self._debug_error_string is not None:
            lines.append(f'\tdebug_error_string = "{self._debug_error_string}"')
        lines.append(">")
        return "\n".join(lines)

    __repr__ = __str__

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every field across pickling (the default would only pass ``args``); the
        # grpcio-compatible subclass pickles as its grpc_lite class.
        return (
            _GRPCIO_COMPATIBLE_OF.get(type(self), type(self)),
            (
                self._code,
                self._details,
                self._initial_metadata,
                self._trailing_metadata,
                self._debug_error_string,
            ),
        )


AioRpcError = RpcError

# grpc_lite error class <-> its subclass that also derives from grpcio's AioRpcError.
_GRPCIO_COMPATIBLE: dict[type[RpcError], type[RpcError]] = {}
_GRPCIO_COMPATIBLE_OF: dict[type, type[RpcError]] = {}


def _grpcio_compatible(cls: type[RpcError], grpc_error: type) -> type[RpcError]:
    found = _GRPCIO_COMPATIBLE.get(cls)
    if found is None:
        found = type(
            cls.__name__,
            (cls, grpc_error),
            {"__slots__": (), "__module__": cls.__module__, "__qualname__": cls.__qualname__},
        )
        _GRPCIO_COMPATIBLE[cls] = found
        _GRPCIO_COMPATIBLE_OF[found] = cls
    return found


class UsageError(RuntimeError):
    """The API was used wrongly (for example an RPC started on a closed channel)."""


# --- HTTP status mapping (grpc/grpc doc/http-grpc-status-mapping.md) -----------------------

_HTTP_TO_STATUS: dict[int, StatusCode] = {
    400: StatusCode.INTERNAL,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.UNIMPLEMENTED,
    429: StatusCode.UNAVAILABLE,
    431: StatusCode.INTERNAL,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.UNAVAILABLE,
}


def status_from_http(http_status: int) -> StatusCode:
    """Map ``:status`` to a gRPC code; only used when the response has no ``grpc-status``.

    Anything not in the table, including 200, is UNKNOWN (http-grpc-status-mapping.md).
    """
    return _HTTP_TO_STATUS.get(http_status, StatusCode.UNKNOWN)


# --- grpc-status (PROTOCOL-HTTP2.md, Responses; statuscodes.md) ----------------------------

_STATUS_BY_TEXT: dict[str, StatusCode] = {str(int(c)): c for c in StatusCode}


def parse_grpc_status(value: str) -> StatusCode | None:
    """Parse a ``grpc-status`` value; None when it is not a decimal in 0..16.

    The caller maps None to UNKNOWN "error parsing returned status" (statuscodes.md).
    Leading zeros are tolerated; a sign, whitespace or any other character is not.
    """
    # Hot path: every response carries one of the 17 canonical spellings.
    code = _STATUS_BY_TEXT.get(value)
    if code is not None:
        return code
    if not value or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    if number > 16:
        return None
    return StatusCode(number)


# --- grpc-message percent-encoding (PROTOCOL-HTTP2.md, Status-Message) -----------------------

_HEX_DIGITS = "0123456789abcdefABCDEF"
# Every two-byte hex escape body (both cases) -> its byte value, so decoding needs no int().
_HEX_PAIRS: dict[bytes, int] = {
    (a + b).encode("ascii"): int(a + b, 16) for a in _HEX_DIGITS for b in _HEX_DIGITS
}
# Byte value -> its form in an encoded grpc-message.
_ENCODE_TABLE: tuple[str, ...] = tuple(
    chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in range(256)
)


def _to_wire_bytes(value: str) -> bytes:
    # The transport decodes header bytes as latin-1, so latin-1 gives the bytes back exactly.
    # A str built by the caller may hold wider characters; UTF-8 is the only sensible reading.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def decode_grpc_message(value: str) -> str:
    """Decode a ``grpc-message`` value: ``%XX`` escapes to bytes, then UTF-8.

    Invalid or truncated escapes are kept as they are, and undecodable UTF-8 is replaced,
    so the message is never dropped and never raises (PROTOCOL-HTTP2.md, Status-Message).
    """
    if "%" not in value:
        if value.isascii():
            return value  # Hot path: nothing to decode.
        return _to_wire_bytes(value).decode("utf-8", errors="replace")
    parts = _to_wire_bytes(value).split(b"%")
    out = bytearray(parts[0])
    pairs = _HEX_PAIRS
    for part in parts[1:]:
        byte = pairs.get(part[:2])
        if byte is None:
            out += b"%"
            out += part
        else:
            out.append(byte)
            out += part[2:]
    return out.decode("utf-8", errors="replace")


def encode_grpc_message(value: str) -> str:
    """Percent-encode a message for ``grpc-message``: UTF-8 bytes outside 0x20-0x7E and ``%``."""
    if "%" not in value and value.isascii() and value.isprintable():
        return value
    table = _ENCODE_TABLE
    return "".join([table[b] for b in value.encode("utf-8")])


# --- gRFC A54: codes the control plane may not produce --------------------------------------

_RESTRICTED_CONTROL_PLANE_CODES = frozenset(
    {
        StatusCode.OK,
        StatusCode.INVALID_ARGUMENT,
        StatusCode.NOT_FOUND,
        StatusCode.ALREADY_EXISTS,
        StatusCode.FAILED_PRECONDITION,
        StatusCode.ABORTED,
        StatusCode.OUT_OF_RANGE,
        StatusCode.DATA_LOSS,
    }
)


def restrict_control_plane_code(code: StatusCode, message: str) -> tuple[StatusCode, str]:
    """Rewrite a control-plane status (resolver, LB pick, service config) per gRFC A54.

    Codes the data plane reserves for the application become INTERNAL; the original code and
    message stay readable in the new message. Other codes pass through unchanged.
    """
    if code not in _RESTRICTED_CONTROL_PLANE_CODES:
        return code, message
    return (
        StatusCode.INTERNAL,
        f"illegal status code {code.name} from the control plane (original message: {message})",
    )
