"""OpenTelemetryPlugin: A66/A96 per-call metrics, A94/A78 connection metrics, A72 tracing."""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, TracerProvider
from opentelemetry.trace import StatusCode as SpanStatusCode

from .. import _observability
from ..status import StatusCode
from . import _names as n
from ._local import LocalHistogram, plan
from ._propagation import SETTER, wire_pairs

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("grpc_lite")

# A histogram's record(value, attributes): Histogram.record or LocalHistogram.record.
_Record = Callable[[float, Mapping[str, str]], None]

_perf_counter = time.perf_counter
_set_span_in_context = trace.set_span_in_context
_STATUS_OK = Status(SpanStatusCode.OK)


def _version() -> str:
    from .. import __version__

    return __version__


class OpenTelemetryPlugin:
    """OpenTelemetry metrics and traces for grpc_lite channels (grpcio-observability's API).

    Args:
        meter_provider: records the metrics (A66, A96, A94, A78) on a meter named
            ``grpc-lite``; None records none. There is no fallback to the global provider
            (A66); pass ``opentelemetry.metrics.get_meter_provider()`` to use it.
        tracer_provider: records the spans (A72) with a tracer named ``grpc-lite``; None
            records none and sends no trace context.
        text_map_propagator: how the attempt's span context goes to the server; None uses
            the global propagator (``opentelemetry.propagate``; W3C ``traceparent`` and
            ``baggage`` by default) at each call. :class:`GrpcTraceBinPropagator` sends A72's
            ``grpc-trace-bin``.
        target_attribute_filter: called once per channel with its canonical target;
            False records ``grpc.target`` as ``"other"`` (for channels to many IP targets).
        generic_method_attribute_filter: called once per method that was not registered
            (a method named at run time, not by a generated stub or ``grpc_lite.Stub``);
            False records ``grpc.method`` as ``"other"``. None (the default) records every
            method's name: a client names its own methods, so grpc_lite does not follow
            A66's ``"other"`` default, which guards servers against arbitrary names
            (``lambda method: False`` restores it).
        disabled_metrics: metric names not to record (``grpc.client.attempt.started``, ...).
        local_aggregation: with the OpenTelemetry SDK's ``MeterProvider`` (and readers that
            aggregate the histograms as explicit-bucket histograms, its default), the plugin
            counts histogram values itself and adds the totals to the SDK's aggregations
            when a reader collects: the same data points for about a fifteenth of the
            SDK's cost per call.
            Anything else (another provider, other aggregations or boundaries in a view,
            the ``always_on`` exemplar filter) records through ``Histogram.record``, as
            False does. ``plugin.local_histograms()`` says which path each histogram took.

    ``plugin.register_global()`` instruments every channel created afterwards,
    ``deregister_global()`` stops that (channels already created keep it); ``with plugin:``
    does both. ``grpc_lite.insecure_channel(target, observability=[plugin])`` instruments one
    channel.
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        text_map_propagator: TextMapPropagator | None = None,
        target_attribute_filter: Callable[[str], bool] | None = None,
        generic_method_attribute_filter: Callable[[str], bool] | None = None,
        disabled_metrics: Iterable[str] = (),
        local_aggregation: bool = True,
    ) -> None:
        disabled = frozenset(disabled_metrics)
        unknown = sorted(disabled - n.INSTRUMENTS.keys())
        if unknown:
            raise ValueError(
                f"disabled_metrics: unknown metric name(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(n.INSTRUMENTS))}"
            )
        self._meter_provider = meter_provider
        self._tracer_provider = tracer_provider
        self._metrics = (
            _Metrics(meter_provider, disabled, local_aggregation)
            if meter_provider is not None
            else None
        )
        self._tracer: Tracer | None = (
            tracer_provider.get_tracer("grpc-lite", _version())
            if tracer_provider is not None
            else None
        )
        self._propagator = text_map_propagator
        self._target_filter = target_attribute_filter
        self._method_filter = generic_method_attribute_filter

    def __repr__(self) -> str:
        return (
            f"<grpc_lite.opentelemetry.OpenTelemetryPlugin metrics={self._metrics is not None} "
            f"tracing={self._tracer is not None}>"
        )

    # ------------------------------------------------------------------ registration

    def register_global(self) -> None:
        """Instrument every grpc_lite channel created from now on (idempotent)."""
        _observability.register_global(self)

    def deregister_global(self) -> None:
        """Channels created from now on are not instrumented by this plugin."""
        _observability.deregister_global(self)

    def __enter__(self) -> OpenTelemetryPlugin:
        self.register_global()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.deregister_global()

    def local_histograms(self) -> dict[str, str]:
        """Each histogram recorded, with "local" when the plugin aggregates it and merges
        the totals at collection, or why it is recorded through the API."""
        metrics = self._metrics
        if metrics is None:
            return {}
        found = {local.name: "local" for local in metrics.local}
        found.update(metrics.not_local)
        return found

    def get_meter_provider(self) -> MeterProvider | None:
        return self._meter_provider

    def get_tracer_provider(self) -> TracerProvider | None:
        return self._tracer_provider

    # ------------------------------------------------------------------ ObservabilityPlugin

    def channel_observer(self, target: str, canonical_target: str) -> _ChannelObserver | None:
        if self._metrics is None and self._tracer is None:
            return None
        label = canonical_target
        if self._target_filter is not None and not self._target_filter(canonical_target):
            label = n.OTHER
        return _ChannelObserver(self, label)

    def _method_label(self, path: str, registered: bool) -> str:
        name = path[1:] if path.startswith("/") else path
        if registered or self._method_filter is None or self._method_filter(name):
            return name
        return n.OTHER


class _Metrics:
    """One plugin's instruments."""

    def __init__(
        self, provider: MeterProvider, disabled: frozenset[str], local_aggregation: bool
    ) -> None:
        meter = provider.get_meter("grpc-lite", _version())
        self._lock = threading.Lock()
        # grpc.client.attempt.started is counted here and observed at collection: a sync
        # counter's add() would cost as much as the rest of an RPC.
        self._started: dict[tuple[str, str], list[int]] = {}
        self._shared: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        histograms: dict[str, _Record] = {}
        # Histograms aggregated by the plugin and merged at collection (see _local), and
        # why the others are not.
        self.local: list[LocalHistogram] = []
        self.not_local: dict[str, str] = {}
        self.counters: dict[str, Any] = {}
        for name, spec in n.INSTRUMENTS.items():
            if name in disabled:
                continue
            if spec.kind == "histogram":
                histograms[name] = self._histogram(meter, spec, local_aggregation)
            elif name == n.ATTEMPT_STARTED:
                pass  # counted here, observed in _at_collection (below)
            elif spec.kind == "updown":
                self.counters[name] = meter.create_up_down_counter(
                    name, unit=spec.unit, description=spec.description
                )
            else:
                self.counters[name] = meter.create_counter(
                    name, unit=spec.unit, description=spec.description
                )
        self.count_started = n.ATTEMPT_STARTED not in disabled
        if self.count_started or self.local:
            # Its callback is also where local histograms are merged: the SDK runs
            # observable instruments' callbacks before it collects a reader's storage.
            spec = n.INSTRUMENTS[n.ATTEMPT_STARTED]
            meter.create_observable_counter(
                spec.name,
                callbacks=[self._at_collection],
                unit=spec.unit,
                description=spec.description,
            )
        self.attempt_duration = histograms.get(n.ATTEMPT_DURATION)
        self.sent_size = histograms.get(n.ATTEMPT_SENT_SIZE)
        self.rcvd_size = histograms.get(n.ATTEMPT_RCVD_SIZE)
        self.call_duration = histograms.get(n.CALL_DURATION)
        self.retries = histograms.get(n.CALL_RETRIES)
        self.transparent_retries = histograms.get(n.CALL_TRANSPARENT_RETRIES)
        self.hedges = histograms.get(n.CALL_HEDGES)
        self.retry_delay = histograms.get(n.CALL_RETRY_DELAY)

    def _histogram(self, meter: Any, spec: n.Instrument, local_aggregation: bool) -> _Record:
        bounds = spec.buckets or ()
        histogram: Histogram = meter.create_histogram(
            spec.name,
            unit=spec.unit,
            description=spec.description,
            explicit_bucket_boundaries_advisory=list(bounds),
        )
        if not local_aggregation:
            self.not_local[spec.name] = "local_aggregation=False"
            return histogram.record
        try:
            sdk, why = plan(histogram, bounds)
        except Exception as exc:  # an SDK this was not written for: the API always works
            sdk, why = None, f"checking the SDK failed: {exc!r}"
        if sdk is None:
            self.not_local[spec.name] = why
            log.debug("grpc_lite: %s is recorded through the API: %s", spec.name, why)
            return histogram.record
        local = LocalHistogram(histogram, bounds, sdk)
        self.local.append(local)
        return local.record

    def shared(self, attributes: dict[str, str]) -> dict[str, str]:
        """The one dict with these items (made once per label set; never changed)."""
        key = tuple(attributes.items())
        with self._lock:
            return self._shared.setdefault(key, attributes)

    def started_cell(self, method: str, target: str) -> list[int]:
        key = (method, target)
        with self._lock:
            cell = self._started.get(key)
            if cell is None:
                cell = self._started[key] = [0]
            return cell

    def _at_collection(self, options: CallbackOptions) -> Iterable[Observation]:
        for local in self.local:
            try:
                local.merge()
            except Exception:
                log.exception("grpc_lite: merging %s into the SDK failed", local.name)
        if not self.count_started:
            return ()
        with self._lock:
            items = list(self._started.items())
        # A method named but never called (a multi-callable made and unused) has no series.
        return [
            Observation(cell[0], {n.METHOD: method, n.TARGET: target})
            for (method, target), cell in items
            if cell[0]
        ]


class _Recorder:
    """A channel's MetricsRecorder (A79): the non-per-call metrics with its grpc.target."""

    __slots__ = ("_counters", "_target")

    def __init__(self, metrics: _Metrics, target: str) -> None:
        self._counters = metrics.counters
        self._target = target

    def add(self, name: str, value: int, labels: Mapping[str, str] | None = None) -> None:
        instrument = self._counters.get(name)
        if instrument is None:
            return
        attributes = {n.TARGET: self._target}
        if labels:
            attributes.update(labels)
        try:
            instrument.add(value, attributes)
        except Exception:
            log.exception("grpc_lite: recording %s failed", name)


class _ChannelObserver:
    __slots__ = ("_methods", "_plugin", "_target", "metrics_recorder")

    def __init__(self, plugin: OpenTelemetryPlugin, target: str) -> None:
        self._plugin = plugin
        self._target = target
        metrics = plugin._metrics
        self.metrics_recorder = _Recorder(metrics, target) if metrics is not None else None
        self._methods: dict[tuple[str, bool], _MethodObserver] = {}

    def method_observer(self, path: str, registered: bool) -> _MethodObserver:
        key = (path, registered)
        found = self._methods.get(key)
        if found is None:
            found = self._methods[key] = _MethodObserver(
                self._plugin, self._target, path, registered
            )
        return found


class _MethodObserver:
    """What every call of one method on one channel shares: labels, attribute sets, names,
    and the bound ``record`` methods of the instruments in use (None: disabled)."""

    __slots__ = (
        "attempt_name",
        "attributes",
        "call_name",
        "metrics",
        "propagator",
        "record_attempt_duration",
        "record_call_duration",
        "record_rcvd_size",
        "record_sent_size",
        "start_call",
        "started",
        "status_attributes",
        "tracer",
    )

    def __init__(
        self, plugin: OpenTelemetryPlugin, target: str, path: str, registered: bool
    ) -> None:
        metrics = plugin._metrics
        self.metrics = metrics
        self.tracer = plugin._tracer
        self.propagator = plugin._propagator
        method = plugin._method_label(path, registered)
        # One attribute dict per status, made once and shared by every channel with the
        # same labels (the local histograms key their cells on the dict itself, so channels
        # that come and go add no cells).
        share = metrics.shared if metrics is not None else dict
        self.attributes = share({n.METHOD: method, n.TARGET: target})
        self.status_attributes = {
            code: share({n.METHOD: method, n.TARGET: target, n.STATUS: code.name})
            for code in StatusCode
        }
        self.started: list[int] | None = (
            metrics.started_cell(method, target)
            if metrics is not None and metrics.count_started
            else None
        )
        self.record_attempt_duration = _bound_record(metrics, "attempt_duration")
        self.record_sent_size = _bound_record(metrics, "sent_size")
        self.record_rcvd_size = _bound_record(metrics, "rcvd_size")
        self.record_call_duration = _bound_record(metrics, "call_duration")
        # A72: "Sent.<service>.<method>" and "Attempt.<service>.<method>" (grpc-go's form).
        dotted = (path[1:] if path.startswith("/") else path).replace("/", ".")
        self.call_name = f"Sent.{dotted}"
        self.attempt_name = f"Attempt.{dotted}"
        # MethodObserver.start_call: the tracer's class bound to this observer (a call
        # starts with one Python frame, its __init__).
        self.start_call: Callable[[], _CallTracer] = partial(_CallTracer, self)


def _bound_record(metrics: _Metrics | None, name: str) -> _Record | None:
    return getattr(metrics, name) if metrics is not None else None


class _CallTracer:
    """One call: its duration, its attempts (A96 counts, retry delay) and its span."""

    __slots__ = (
        "_active",
        "_attempts",
        "_delay",
        "_done",
        "_hedges",
        "_idle_since",
        "_m",
        "_open",
        "_retries",
        "_span",
        "_start",
        "_transparent",
    )

    def __init__(self, m: _MethodObserver) -> None:
        self._m = m
        self._start = _perf_counter()
        self._attempts = 0  # attempts started, transparent retries excluded
        self._retries = 0
        self._hedges = 0
        self._transparent = 0
        self._active = 0
        self._idle_since = 0.0  # when the last attempt ended (0: one is running, or none yet)
        self._delay = 0.0
        self._done = False
        self._open: list[_AttemptTracer] = []
        self._span: Span | None = None
        tracer = m.tracer
        if tracer is not None:
            try:
                self._span = tracer.start_span(m.call_name, kind=SpanKind.CLIENT)
            except Exception:
                log.exception("grpc_lite: starting the call span failed")

    def start_attempt(self, transparent: bool, hedge: bool = False) -> _AttemptTracer:
        now = _perf_counter()
        if self._idle_since:
            self._delay += now - self._idle_since
            self._idle_since = 0.0
        if transparent:
            self._transparent += 1
            previous = max(self._attempts - 1, 0)
        else:
            previous = self._attempts
            if previous:
                if hedge:
                    self._hedges += 1
                else:
                    self._retries += 1
            self._attempts = previous + 1
        self._active += 1
        started = self._m.started
        if started is not None:
            started[0] += 1
        attempt = _AttemptTracer(self, now, previous, transparent)
        self._open.append(attempt)
        return attempt

    def resolution_delayed(self) -> None:
        span = self._span
        if span is not None:
            span.add_event("Delayed name resolution complete")

    def end(self, code: StatusCode, details: str) -> None:
        if self._done:
            return
        if self._open:
            # An attempt still picking (no stream yet) ends with the call.
            for attempt in list(self._open):
                attempt.end(code, details)
        self._done = True
        now = _perf_counter()
        m = self._m
        try:
            record = m.record_call_duration
            if record is not None:
                record(now - self._start, m.status_attributes[code])
            if self._attempts > 1 or self._transparent:
                self._record_retries()
        except Exception:
            log.exception("grpc_lite: recording call metrics failed")
        span = self._span
        if span is not None:
            try:
                span.set_status(_span_status(code, details))
                span.end()
            except Exception:
                log.exception("grpc_lite: ending the call span failed")

    def _record_retries(self) -> None:
        """A96: only calls that retried, hedged or retried transparently record these."""
        metrics = self._m.metrics
        if metrics is None:
            return
        attributes = self._m.attributes
        retries, hedges, transparent = self._retries, self._hedges, self._transparent
        if retries and metrics.retries is not None:
            metrics.retries(retries, attributes)
        if hedges and metrics.hedges is not None:
            metrics.hedges(hedges, attributes)
        if transparent and metrics.transparent_retries is not None:
            metrics.transparent_retries(transparent, attributes)
        if (retries or hedges) and metrics.retry_delay is not None:
            metrics.retry_delay(self._delay, attributes)


def _span_status(code: StatusCode, details: str) -> Status:
    """A72: OK is OK; anything else is ERROR, described "CODE, details"."""
    if code is StatusCode.OK:
        return _STATUS_OK
    return Status(SpanStatusCode.ERROR, f"{code.name}, {details}" if details else code.name)


class _AttemptTracer:
    """One attempt: its duration, message bytes and span."""

    __slots__ = ("_call", "_ended", "_rcvd", "_sent", "_seq_in", "_seq_out", "_span", "_start")

    def __init__(self, call: _CallTracer, now: float, previous: int, transparent: bool) -> None:
        self._call = call
        self._start = now
        self._sent = 0
        self._rcvd = 0
        self._ended = False
        self._span: Span | None = None
        call_span = call._span
        if call_span is not None:
            m = call._m
            assert m.tracer is not None
            self._seq_out = 0
            self._seq_in = 0
            try:
                self._span = m.tracer.start_span(
                    m.attempt_name,
                    context=_set_span_in_context(call_span),
                    attributes={
                        "previous-rpc-attempts": previous,
                        "transparent-retry": transparent,
                    },
                )
            except Exception:
                log.exception("grpc_lite: starting the attempt span failed")

    def headers(self) -> Sequence[tuple[str, str]]:
        span = self._span
        if span is None:
            return ()
        carrier: list[tuple[str, str]] = []
        try:
            propagator = self._call._m.propagator or get_global_textmap()
            propagator.inject(carrier, context=_set_span_in_context(span), setter=SETTER)
        except Exception:
            log.exception("grpc_lite: injecting the trace context failed")
            return ()
        return wire_pairs(carrier)

    def pick_delayed(self) -> None:
        span = self._span
        if span is not None:
            span.add_event("Delayed LB pick complete")

    def message_sent(self, frame: bytes) -> None:
        size = len(frame) - 5
        self._sent += size
        span = self._span
        if span is not None:
            seq = self._seq_out
            self._seq_out = seq + 1
            attributes = {"sequence-number": seq, "message-size": size}
            if frame[:1] == b"\x01":
                attributes["message-size"] = _uncompressed_size(frame)
                attributes["message-size-compressed"] = size
            span.add_event("Outbound message", attributes)

    def message_received(self, size: int, compressed_size: int | None) -> None:
        self._rcvd += size if compressed_size is None else compressed_size
        span = self._span
        if span is not None:
            seq = self._seq_in
            self._seq_in = seq + 1
            attributes = {"sequence-number": seq, "message-size": size}
            if compressed_size is not None:
                attributes["message-size-compressed"] = compressed_size
            span.add_event("Inbound message", attributes)

    def end(self, code: StatusCode, details: str) -> None:
        if self._ended:
            return
        self._ended = True
        now = _perf_counter()
        call = self._call
        m = call._m
        try:
            attributes = m.status_attributes[code]
            record = m.record_attempt_duration
            if record is not None:
                record(now - self._start, attributes)
            record = m.record_sent_size
            if record is not None:
                record(self._sent, attributes)
            record = m.record_rcvd_size
            if record is not None:
                record(self._rcvd, attributes)
        except Exception:
            log.exception("grpc_lite: recording attempt metrics failed")
        span = self._span
        if span is not None:
            try:
                span.set_status(_span_status(code, details))
                span.end()
            except Exception:
                log.exception("grpc_lite: ending the attempt span failed")
        # The call hears of it (and drops it: no reference cycle is left behind).
        try:
            call._open.remove(self)
        except ValueError:
            pass
        call._active -= 1
        if not call._active and not call._done:
            call._idle_since = now


def _uncompressed_size(frame: bytes) -> int:
    """The size of a compressed request message (gzip or deflate) before compression, for
    its span event; only computed when spans are recorded."""
    try:
        return len(zlib.decompress(frame[5:], 47))  # 47: zlib or gzip header, detected
    except zlib.error:
        return len(frame) - 5
