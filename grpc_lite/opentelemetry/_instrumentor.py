"""GrpcLiteInstrumentor: ``opentelemetry-instrument python app.py`` instruments grpc_lite.

Found through the ``opentelemetry_instrumentor`` entry point ``grpc_lite`` (pyproject.toml).
Auto-instrumentation configures the SDK from the environment first, then calls
``GrpcLiteInstrumentor().instrument()``: an :class:`OpenTelemetryPlugin` on the global meter
and tracer providers (and the global propagator) is registered for every channel created
afterwards.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from ._plugin import OpenTelemetryPlugin


class _StandaloneInstrumentor:
    """The part of opentelemetry-instrumentation's BaseInstrumentor used here, for when that
    package (not a dependency of grpc-lite[otel]) is missing."""

    _instance: Any = None
    _is_instrumented_by_opentelemetry = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        return self._is_instrumented_by_opentelemetry

    def instrument(self, **kwargs: Any) -> Any:
        if self._is_instrumented_by_opentelemetry:
            return None
        kwargs.pop("skip_dep_check", None)
        kwargs.pop("raise_exception_on_conflict", None)
        result = self._instrument(**kwargs)
        self._is_instrumented_by_opentelemetry = True
        return result

    def uninstrument(self, **kwargs: Any) -> Any:
        if not self._is_instrumented_by_opentelemetry:
            return None
        result = self._uninstrument(**kwargs)
        self._is_instrumented_by_opentelemetry = False
        return result

    def _instrument(self, **kwargs: Any) -> Any: ...

    def _uninstrument(self, **kwargs: Any) -> Any: ...


if TYPE_CHECKING:
    _Base = _StandaloneInstrumentor
else:
    try:
        from opentelemetry.instrumentation.instrumentor import BaseInstrumentor as _Base
    except ImportError:
        _Base = _StandaloneInstrumentor


class GrpcLiteInstrumentor(_Base):
    """Instruments every grpc_lite channel created after ``instrument()``.

    ``GrpcLiteInstrumentor().instrument(meter_provider=..., tracer_provider=...,
    text_map_propagator=..., **plugin_options)``: each provider defaults to the global one;
    other keyword arguments go to :class:`OpenTelemetryPlugin`. ``uninstrument()`` stops
    instrumenting new channels. ``plugin`` is the registered plugin (None when not
    instrumented).
    """

    plugin: OpenTelemetryPlugin | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("grpc-lite",)

    def _instrument(self, **kwargs: Any) -> None:
        meter_provider = kwargs.pop("meter_provider", None) or metrics.get_meter_provider()
        tracer_provider = kwargs.pop("tracer_provider", None) or trace.get_tracer_provider()
        plugin = OpenTelemetryPlugin(
            meter_provider=meter_provider, tracer_provider=tracer_provider, **kwargs
        )
        plugin.register_global()
        type(self).plugin = plugin

    def _uninstrument(self, **kwargs: Any) -> None:
        plugin = type(self).plugin
        if plugin is not None:
            plugin.deregister_global()
            type(self).plugin = None
