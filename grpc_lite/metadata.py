"""Call metadata: the ``Metadata`` multi-dict and header conversion both ways (L0).

Pure functions only: no I/O, no asyncio. Spec: grpc/grpc doc/PROTOCOL-HTTP2.md
(Custom-Metadata, Header-Name, Binary-Header, ASCII-Value, Timeout, Responses).
"""

import binascii
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = [
    "Metadata",
    "MetadataType",
    "MetadataValue",
    "decode_incoming",
    "decode_timeout",
    "encode_outgoing",
    "encode_timeout",
]

MetadataValue = str | bytes
MetadataType = Sequence[tuple[str, str | bytes]]


class Metadata:
    """A multi-dict of call metadata, like ``grpc.aio.Metadata``.

    Iterating gives ``(key, value)`` pairs in the order they were added (received);
    ``items()`` gives the same pairs, ``values()`` one value per pair, and ``keys()`` each
    distinct key once, in order of first appearance. Keys are kept as given (lowercase on
    the wire). Equality compares the values of each key in order, ignoring the interleaving
    of different keys (HTTP/2 does not keep it, PROTOCOL-HTTP2.md), against another ``Metadata`` or
    any sequence of pairs.

    Not thread-safe; owned by whoever built it.
    """

    __slots__ = ("_pairs",)

    def __init__(self, *args: tuple[str, MetadataValue]) -> None:
        self._pairs: list[tuple[str, MetadataValue]] = [(k, v) for k, v in args]

    @classmethod
    def from_tuple(cls, raw_metadata: Iterable[tuple[str, MetadataValue]] | None) -> "Metadata":
        md = cls()
        if raw_metadata:
            md._pairs = [(k, v) for k, v in raw_metadata]
        return md

    @classmethod
    def _from_pairs(cls, pairs: list[tuple[str, MetadataValue]]) -> "Metadata":
        # Takes ownership of ``pairs`` (no copy): for decode_incoming.
        md = cls.__new__(cls)
        md._pairs = pairs
        return md

    def add(self, key: str, value: MetadataValue) -> None:
        self._pairs.append((key, value))

    def __getitem__(self, key: str) -> MetadataValue:
        """The first value of ``key``; KeyError when there is none."""
        for k, v in self._pairs:
            if k == key:
                return v
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self._pairs:
            if k == key:
                return v
        return default

    def get_all(self, key: str) -> list[MetadataValue]:
        return [v for k, v in self._pairs if k == key]

    def __setitem__(self, key: str, value: MetadataValue) -> None:
        """Replace every value of ``key`` by ``value``, at the position of the first one."""
        self.set_all(key, [value])

    def set_all(self, key: str, values: Iterable[MetadataValue]) -> None:
        """Replace every value of ``key`` by ``values``, at the position of the first one."""
        new_pairs = [(key, v) for v in values]
        pairs = self._pairs
        for i, (k, _) in enumerate(pairs):
            if k == key:
                rest = [p for p in pairs[i + 1 :] if p[0] != key]
                self._pairs = pairs[:i] + new_pairs + rest
                return
        pairs.extend(new_pairs)

    def __delitem__(self, key: str) -> None:
        """Delete the first value of ``key``; KeyError when there is none."""
        pairs = self._pairs
        for i, (k, _) in enumerate(pairs):
            if k == key:
                del pairs[i]
                return
        raise KeyError(key)

    def delete_all(self, key: str) -> None:
        """Delete every value of ``key`` (no error when there is none)."""
        self._pairs = [p for p in self._pairs if p[0] != key]

    def __contains__(self, key: object) -> bool:
        # A plain loop: cheaper than any() over a generator for the few pairs a call has.
        for k, _ in self._pairs:  # noqa: SIM110
            if k == key:
                return True
        return False

    def __len__(self) -> int:
        return len(self._pairs)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def __iter__(self) -> Iterator[tuple[str, MetadataValue]]:
        return iter(self._pairs)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(k for k, _ in self._pairs))

    def values(self) -> list[MetadataValue]:
        return [v for _, v in self._pairs]

    def items(self) -> list[tuple[str, MetadataValue]]:
        return list(self._pairs)

    def __add__(self, other: "Metadata | Iterable[tuple[str, MetadataValue]]") -> "Metadata":
        md = Metadata._from_pairs(list(self._pairs))
        md._pairs.extend(other)
        return md

    @staticmethod
    def _grouped(pairs: Iterable[tuple[str, MetadataValue]]) -> dict[str, list[MetadataValue]]:
        groups: dict[str, list[MetadataValue]] = {}
        for k, v in pairs:
            groups.setdefault(k, []).append(v)
        return groups

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Metadata):
            other_pairs = other._pairs
        elif isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            try:
                other_pairs = [(k, v) for k, v in other]
            except (TypeError, ValueError):
                return NotImplemented
        else:
            return NotImplemented
        if self._pairs == other_pairs:
            return True
        if len(self._pairs) != len(other_pairs):
            return False
        return self._grouped(self._pairs) == self._grouped(other_pairs)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({tuple(self._pairs)!r})"


# --- Outgoing metadata (PROTOCOL-HTTP2.md, Custom-Metadata) ----------------------------------

_KEY_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz_.-")
# Transport (hop-by-hop or call-definition) headers the application may not set
# (PROTOCOL-HTTP2.md, Custom-Metadata; grpc-go isReservedHeader). Anything starting with ":"
# or "grpc-" is reserved as well.
_RESERVED_KEYS = frozenset(
    {
        "content-type",
        "te",
        "connection",
        "host",
        "transfer-encoding",
        "upgrade",
        "keep-alive",
        "proxy-connection",
    }
)
# Keys already validated -> whether they are binary (``-bin``). Bounded so that an
# application that invents keys per call cannot grow it without limit.
_VALID_KEY_CACHE: dict[str, bool] = {}
_VALID_KEY_CACHE_MAX = 1024


def _check_key(key: object) -> bool:
    """Validate an outgoing key; return whether it is binary. Slow path behind the cache."""
    if not isinstance(key, str):
        raise ValueError(f"metadata key {key!r} is not a str")
    if not key:
        raise ValueError(f"metadata key {key!r} must not be empty")
    if key.startswith(":") or key.startswith("grpc-") or key in _RESERVED_KEYS:
        raise ValueError(f"metadata key {key!r} is reserved for the gRPC protocol")
    if not _KEY_CHARS.issuperset(key):
        raise ValueError(
            f"metadata key {key!r} is invalid: keys may only contain 0-9 a-z _ . - (lowercase)"
        )
    is_bin = key.endswith("-bin")
    if len(_VALID_KEY_CACHE) < _VALID_KEY_CACHE_MAX:
        _VALID_KEY_CACHE[key] = is_bin
    return is_bin


def _b64_unpadded(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").decode("ascii")


def encode_outgoing(metadata: MetadataType | Metadata | None) -> list[tuple[str, str]]:
    """Validate user metadata and convert it to header pairs (PROTOCOL-HTTP2.md, Custom-Metadata).

    ``-bin`` values must be bytes (a str is encoded as UTF-8) and are sent as unpadded
    standard base64; other values must be str of printable ASCII (0x20-0x7E). Repeated keys
    are all kept, in order. Raises ValueError naming the offending key.
    """
    if not metadata:
        return []
    cache = _VALID_KEY_CACHE
    out: list[tuple[str, str]] = []
    for item in metadata:
        try:
            key, value = item
        except (TypeError, ValueError):
            raise ValueError(f"metadata item {item!r} is not a (key, value) pair") from None
        if not isinstance(key, str):
            raise ValueError(f"metadata key {key!r} must be a str, not {type(key).__name__}")
        is_bin = cache.get(key)
        if is_bin is None:
            is_bin = _check_key(key)
        if is_bin:
            if isinstance(value, str):
                value = value.encode("utf-8")
            elif not isinstance(value, (bytes, bytearray, memoryview)):
                raise ValueError(
                    f"metadata value for binary key {key!r} must be bytes, "
                    f"not {type(value).__name__}"
                )
            out.append((key, _b64_unpadded(value)))
        elif isinstance(value, str):
            if value[:1] == " " or value[-1:] == " ":
                # RFC 9113 8.2.1: a field value must not start or end with whitespace
                # (a strict server fails the whole connection); PROTOCOL-HTTP2.md allows stripping.
                value = value.strip(" ")
            if not (value.isascii() and value.isprintable()):
                raise ValueError(
                    f"metadata value for key {key!r} must be printable ASCII (0x20-0x7E); "
                    f"use a key ending in '-bin' for binary data"
                )
            out.append((key, value))
        else:
            raise ValueError(
                f"metadata value for key {key!r} must be str, not {type(value).__name__} "
                f"(only keys ending in '-bin' carry bytes)"
            )
    return out


# --- Incoming metadata (PROTOCOL-HTTP2.md, Responses) ----------------------------------------


def _b64_decode(key: str, text: str) -> bytes:
    # Padded and unpadded input are both accepted (PROTOCOL-HTTP2.md): pad to a multiple of 4.
    text = text.strip(" \t")
    missing = -len(text) % 4
    if missing:
        # Unpadded (RawStdEncoding) input; a partly padded value is invalid, as in grpc-go.
        if "=" in text:
            raise ValueError(f"invalid base64 in header {key!r}")
        text += "=" * missing
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise ValueError(f"invalid base64 in header {key!r}") from None


def decode_incoming(headers: Iterable[tuple[str, str]]) -> Metadata:
    """Build response metadata from header pairs already stripped of protocol headers.

    ``-bin`` values are split on "," and each piece base64-decoded (padded or not); invalid
    base64 raises ``ValueError("invalid base64 in header 'k-bin'")``, which the caller turns
    into INTERNAL. Other values are kept as str whatever characters they hold (PROTOCOL-HTTP2.md,
    ASCII-Value).
    """
    pairs: list[tuple[str, MetadataValue]] = []
    append = pairs.append
    for key, value in headers:
        if key.endswith("-bin"):
            if "," in value:
                for piece in value.split(","):
                    append((key, _b64_decode(key, piece)))
            else:
                append((key, _b64_decode(key, value)))
        else:
            append((key, value))
    return Metadata._from_pairs(pairs)


# --- grpc-timeout (PROTOCOL-HTTP2.md, Timeout) -----------------------------------------------

_MAX_TIMEOUT_DIGITS_VALUE = 99_999_999
# Units from finest to coarsest, with their size in nanoseconds.
_TIMEOUT_UNITS: tuple[tuple[str, int], ...] = (
    ("n", 1),
    ("u", 1_000),
    ("m", 1_000_000),
    ("S", 1_000_000_000),
    ("M", 60 * 1_000_000_000),
    ("H", 3_600 * 1_000_000_000),
)
_TIMEOUT_UNIT_NANOS: dict[str, int] = dict(_TIMEOUT_UNITS)
_MAX_TIMEOUT_SECONDS = _MAX_TIMEOUT_DIGITS_VALUE * 3_600
_MAX_TIMEOUT = f"{_MAX_TIMEOUT_DIGITS_VALUE}H"


def encode_timeout(seconds: float) -> str:
    """Encode a remaining time as a ``grpc-timeout`` value (PROTOCOL-HTTP2.md, Timeout).

    At most 8 digits plus a unit, using the finest unit in which the value fits and rounding
    up, so the server never sees a shorter deadline than the client holds. Non-positive
    input gives "1n" (callers fail such calls locally instead); values beyond the largest
    encodable one (about 11,400 years) are clamped to it.
    """
    if not seconds > 0:  # also catches NaN
        return "1n"
    if seconds >= _MAX_TIMEOUT_SECONDS:
        return _MAX_TIMEOUT
    # Round up to whole nanoseconds. The float product is exact to 1 part in 2**53, so
    # ceil() only ever adds a nanosecond a user could not have meant to drop (1 ms stays
    # "1000000n" rather than gaining one from the binary representation of 0.001).
    product = seconds * 1e9
    nanos = int(product)
    if nanos < product:
        nanos += 1
    # Hot path: most deadlines are under 100 s and fit as microseconds.
    if nanos <= 99_999_999_000:
        if nanos <= _MAX_TIMEOUT_DIGITS_VALUE:
            return f"{nanos}n"
        return f"{-(-nanos // 1_000)}u"
    for unit, size in _TIMEOUT_UNITS[2:]:
        value = -(-nanos // size)
        if value <= _MAX_TIMEOUT_DIGITS_VALUE:
            return f"{value}{unit}"
    return _MAX_TIMEOUT  # unreachable: seconds < _MAX_TIMEOUT_SECONDS fits in hours


def decode_timeout(value: str) -> float:
    """Decode a ``grpc-timeout`` value to seconds; ValueError when malformed (over 8 digits,
    no digits, sign, unknown unit)."""
    digits = value[:-1]
    size = _TIMEOUT_UNIT_NANOS.get(value[-1:])
    if size is None or not 1 <= len(digits) <= 8 or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"malformed grpc-timeout {value!r}")
    # int / int is correctly rounded, so an exact encoding decodes to the nearest float.
    return int(digits) * size / 1_000_000_000
