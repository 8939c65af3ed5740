"""The channel's multi-callable factories (L5): ``unary_unary`` and its three siblings, with
grpc.aio's signatures, and the interceptor chain a call starts through.

`CallFactories` is the channel's base for them: each factory builds the method's constants
once (`grpc_lite._call.Method`: its header blocks, its observer) and a multi-callable around
them.
"""

from typing import TYPE_CHECKING, Any, Protocol

from . import _call, _interceptors
from ._call import (
    Call,
    CallContext,
    Method,
    StreamStreamMultiCallable,
    StreamUnaryMultiCallable,
    UnaryStreamMultiCallable,
    UnaryUnaryMultiCallable,
)

if TYPE_CHECKING:
    from ._credentials import CallCredentials
    from ._observability import ChannelObserver
    from ._target_plan import TargetPlan

__all__ = ["CallFactories"]

_CALL_CLASSES: dict[str, Any] = {
    "unary_unary": _call.UnaryUnaryCall,
    "unary_stream": _call.UnaryStreamCall,
    "stream_unary": _call.StreamUnaryCall,
    "stream_stream": _call.StreamStreamCall,
}


class _Host(CallContext, Protocol):
    """What the factories need from the channel they are a base of."""

    _interceptors: tuple[Any, ...]
    _observer: "ChannelObserver | None"
    _plan: "TargetPlan"
    _call_credentials: "CallCredentials | None"

    def _method(
        self, path: str, serializer: Any, deserializer: Any, registered: bool = False
    ) -> Method: ...

    def _intercept(
        self, kind: str, method: Method, request: Any, kwargs: dict[str, Any]
    ) -> Any: ...


class CallFactories:
    """grpc.aio's multi-callable factories, for `grpc_lite.Channel`.

    Who may call: the application, from any code (calls start on the channel's loop).
    """

    def unary_unary(
        self: _Host,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> UnaryUnaryMultiCallable:
        return UnaryUnaryMultiCallable(
            self._method(method, request_serializer, response_deserializer, _registered_method),
            self._intercept if self._interceptors else None,
        )

    def unary_stream(
        self: _Host,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> UnaryStreamMultiCallable:
        return UnaryStreamMultiCallable(
            self._method(method, request_serializer, response_deserializer, _registered_method),
            self._intercept if self._interceptors else None,
        )

    def stream_unary(
        self: _Host,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> StreamUnaryMultiCallable:
        return StreamUnaryMultiCallable(
            self._method(method, request_serializer, response_deserializer, _registered_method),
            self._intercept if self._interceptors else None,
        )

    def stream_stream(
        self: _Host,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> StreamStreamMultiCallable:
        return StreamStreamMultiCallable(
            self._method(method, request_serializer, response_deserializer, _registered_method),
            self._intercept if self._interceptors else None,
        )

    def _intercept(
        self: _Host, kind: str, method: Method, request: Any, kwargs: dict[str, Any]
    ) -> Any:
        """Start a call through the channel's interceptors (grpc.aio semantics)."""
        details = _interceptors.ClientCallDetails(
            method=method.path,
            timeout=kwargs["timeout"],
            metadata=kwargs["metadata"],
            credentials=kwargs["credentials"],
            wait_for_ready=kwargs["wait_for_ready"],
        )
        call_cls = _CALL_CLASSES[kind]

        def invoke(final: _interceptors.ClientCallDetails, final_request: Any) -> Call:
            self.check_open()
            target = method
            if final.method != method.path:
                target = self._method(final.method, method.serializer, method.deserializer)
            call: Call = call_cls(
                target,
                final_request,
                timeout=final.timeout,
                metadata=final.metadata,
                wait_for_ready=final.wait_for_ready,
                compression=kwargs["compression"],
                credentials=_call.call_credentials(target, final.credentials),
            )
            return call

        return _interceptors.InterceptedCall(kind, self._interceptors, details, request, invoke)

    def _method(
        self: _Host, path: str, serializer: Any, deserializer: Any, registered: bool = False
    ) -> Method:
        observer = self._observer
        plan = self._plan
        return Method(
            self,
            path,
            scheme=plan.scheme,
            authority=plan.authority,
            user_agent=self.options.user_agent,
            serializer=serializer,
            deserializer=deserializer,
            auth_scheme=plan.auth_scheme,
            call_credentials=self._call_credentials,
            observer=(
                observer.method_observer(path, registered)
                if observer is not None and isinstance(path, str) and path.startswith("/")
                else None
            ),
        )
