"""Trace context in gRPC metadata (A72 "Propagator Wire Format").

- ``MetadataSetter`` / ``MetadataGetter``: the TextMap carrier for a list of metadata pairs.
  ``grpc-trace-bin`` travels as bytes (its text form is base64, as A72's ``GrpcCommonSetter``
  decodes it); any other ``-bin`` key is refused (A72: only grpc-trace-bin is binary).
- ``GrpcTraceBinPropagator``: A72's ``grpc-trace-bin`` format (OpenCensus's binary span
  context: version 0, field 0 trace id, field 1 span id, field 2 trace options), so a
  grpc_lite client can talk to OpenCensus-instrumented servers during a migration.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

log = logging.getLogger("grpc_lite")

GRPC_TRACE_BIN = "grpc-trace-bin"
_HEADER_LEN = 29


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def wire_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Pairs a propagator set, in wire form: lowercase keys, ``grpc-trace-bin`` as unpadded
    base64 (how every ``-bin`` value is sent), other ``-bin`` keys and values that are not
    printable ASCII dropped with a log line."""
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        key = key.lower()
        if key.endswith("-bin"):
            if key != GRPC_TRACE_BIN:
                log.error("grpc_lite: binary propagator other than grpc-trace-bin: %r dropped", key)
                continue
            try:
                raw = _b64decode(value)
            except (binascii.Error, ValueError):
                log.error("grpc_lite: grpc-trace-bin value is not base64: dropped")
                continue
            out.append((key, base64.b64encode(raw).rstrip(b"=").decode("ascii")))
        elif value.isascii() and value.isprintable():
            out.append((key, value))
        else:
            log.error("grpc_lite: propagator value for %r is not printable ASCII: dropped", key)
    return out


class MetadataSetter(Setter[list[tuple[str, str]]]):
    """Appends ``(key, value)`` to a list of pairs (text form; see :func:`wire_pairs`)."""

    def set(self, carrier: list[tuple[str, str]], key: str, value: str) -> None:
        carrier.append((key, value))


class MetadataGetter(Getter[Sequence[Any]]):
    """Reads a received metadata sequence (``grpc_lite.Metadata``, grpcio's
    ``invocation_metadata()`` tuples, or pairs); ``-bin`` bytes values come back base64."""

    def get(self, carrier: Sequence[Any], key: str) -> list[str] | None:
        key = key.lower()
        found: list[str] = []
        for item in carrier:
            k, v = (item.key, item.value) if hasattr(item, "key") else item
            if k.lower() != key:
                continue
            if isinstance(v, (bytes, bytearray, memoryview)):
                found.append(base64.b64encode(bytes(v)).decode("ascii"))
            else:
                found.append(str(v))
        return found or None

    def keys(self, carrier: Sequence[Any]) -> list[str]:
        return [item.key if hasattr(item, "key") else item[0] for item in carrier]


SETTER = MetadataSetter()
GETTER = MetadataGetter()


def to_grpc_trace_bin(span_context: trace.SpanContext) -> bytes:
    """The 29-byte ``grpc-trace-bin`` value of a span context."""
    return (
        b"\x00\x00"
        + span_context.trace_id.to_bytes(16, "big")
        + b"\x01"
        + span_context.span_id.to_bytes(8, "big")
        + b"\x02"
        + bytes([int(span_context.trace_flags) & 0xFF])
    )


def from_grpc_trace_bin(value: bytes) -> trace.SpanContext | None:
    """A remote span context from a ``grpc-trace-bin`` value, or None when malformed."""
    if (
        len(value) != _HEADER_LEN
        or value[0] != 0
        or value[1] != 0
        or value[18] != 1
        or value[27] != 2
    ):
        return None
    span_context = trace.SpanContext(
        trace_id=int.from_bytes(value[2:18], "big"),
        span_id=int.from_bytes(value[19:27], "big"),
        is_remote=True,
        trace_flags=trace.TraceFlags(value[28]),
    )
    return span_context if span_context.is_valid else None


class GrpcTraceBinPropagator(TextMapPropagator):
    """A72's ``grpc-trace-bin`` propagator (the OpenCensus binary format).

    Pass it as ``OpenTelemetryPlugin(text_map_propagator=GrpcTraceBinPropagator())`` to send
    ``grpc-trace-bin`` instead of the global propagator's headers (W3C ``traceparent`` by
    default), or combine both with OpenTelemetry's ``CompositePropagator`` while servers
    migrate. Through any other carrier the value is base64 text.
    """

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        value = base64.b64encode(to_grpc_trace_bin(span_context)).decode("ascii")
        setter.set(carrier, GRPC_TRACE_BIN, value)

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        values = getter.get(carrier, GRPC_TRACE_BIN)
        if not values:
            return context
        try:
            raw = _b64decode(values[0])
        except (binascii.Error, ValueError):
            return context
        span_context = from_grpc_trace_bin(raw)
        if span_context is None:
            return context
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context), context)

    @property
    def fields(self) -> set[str]:
        return {GRPC_TRACE_BIN}
