"""A call's configuration (L5): what the resolver's config selector (gRFC A31) and the
service config's method entry (service_config.proto, MethodConfig; A6 for the retry and
hedging policies) make of one call, at its start or when the first resolver result arrives
after it started.

grpc-go counterpart: ``newClientStream``'s ``SelectConfig`` and ``callInfo`` setup, and
``waitForResolvedAddrs`` for a late config.

Who may call: the call being configured (`grpc_lite._call.Call`), on the channel's loop.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._attempts import AttemptRunner
from ._deadlines import DeadlineGroup
from .balancer import PickInfo
from .resolver import RpcInfo
from .status import RpcError, StatusCode, restrict_control_plane_code

if TYPE_CHECKING:
    from ._call import Call
    from .resolver import ConfigSelector
    from .service_config import MethodConfig

__all__ = ["apply_method_config", "configure_late", "select_config"]


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def select_config(
    call: "Call", selector: "ConfigSelector"
) -> "tuple[MethodConfig | None, RpcError | None]":
    """Ask the resolver's config selector for ``call``'s configuration (gRFC A31; grpc-go:
    newClientStream's SelectConfig): the method config in force (the selector's, else the
    service config's), or the error that fails the call (its code restricted per A54, as
    grpc-go does). The selector's attributes reach every pick of the call; its
    ``on_committed`` is kept for the commit."""
    info = call._pick_info
    method = call._method
    # A call without metadata has its method's PickInfo: the selector gets the method's
    # RpcInfo, made once (both are immutable, so sharing them is sharing equal values).
    plain = info is method.pick_info
    try:
        config = selector.select(
            method.rpc_info if plain else RpcInfo(method=method.path, metadata=info.metadata)
        )
    except RpcError as exc:
        code, details = restrict_control_plane_code(exc.code(), exc.details() or "")
        return None, RpcError(code, details)
    except Exception as exc:
        return None, RpcError(StatusCode.INTERNAL, f"the config selector failed: {exc!r}")
    attributes = config.attributes
    if attributes:
        if not plain:
            call._pick_info = PickInfo(
                method=method.path, metadata=info.metadata, attributes=attributes
            )
        else:
            # Hot path: the PickInfo of the last call without metadata whose selector
            # returned this very RpcConfig is this call's too (the same method, no
            # metadata, the same attributes object). A retry's pick adds its
            # previous_subchannels to a PickInfo of its own (`_attempts.TriedSubchannels`).
            routed = method.routed
            if routed is not None and routed[0] is config:
                call._pick_info = routed[1]
            else:
                shared = PickInfo(method=method.path, attributes=attributes)
                method.routed = (config, shared)
                call._pick_info = shared
    call._on_committed = config.on_committed
    mc = config.method_config
    if mc is not None:
        return mc, None
    # Method.method_config's cache check, inline (as Call.__init__ has it).
    if method._mc_generation == method.channel.config_generation:
        return method._mc, None
    return method.method_config(), None


def apply_method_config(call: "Call", mc: "MethodConfig", timeout: float | None) -> float | None:
    """Apply a method config where the call said nothing (service_config.proto,
    MethodConfig); message limits take the smaller of the two; a retry or hedging policy
    gives the call an attempt runner. Returns the effective timeout."""
    if mc.timeout is not None and (timeout is None or mc.timeout < timeout):
        timeout = mc.timeout
    if not call._wfr_given and mc.wait_for_ready is not None:
        call._wait_for_ready = mc.wait_for_ready
    if mc.max_request_message_bytes is not None:
        call._max_send = _smaller(call._max_send, mc.max_request_message_bytes)
    if mc.max_response_message_bytes is not None:
        call._max_receive = _smaller(call._max_receive, mc.max_response_message_bytes)
    if call._method.channel.options.enable_retries and (mc.retry_policy or mc.hedging_policy):
        runner = call._runner
        if runner is None:
            call._runner = AttemptRunner(call, mc.retry_policy, mc.hedging_policy)
        else:
            runner.use_policy(mc.retry_policy, mc.hedging_policy)
    return timeout


def configure_late(call: "Call", started: float, frames: Sequence[bytes]) -> bool:
    """The service config arrived after ``call`` started (at ``started``): apply its
    configuration as of then, and check the request ``frames`` written so far against the
    new limit. False when that failed the call."""
    call._config_pending = False
    selector = call._method.channel.config_selector
    if selector is None:
        mc = call._method.method_config()
    else:
        mc, failure = select_config(call, selector)
        if failure is not None:
            call._finish(failure.code(), failure.details() or "", None)
            return False
    if mc is None:
        return True
    timeout = apply_method_config(call, mc, None)
    if timeout is not None:
        deadline = started + timeout
        if call._deadline is None or deadline < call._deadline:
            call._deadline = deadline
            group = call._deadline_group
            if group is not None:
                group.discard(call)
            loop = call._loop
            # A group of its own: this deadline does not follow the method's start order.
            call._deadline_group = group = DeadlineGroup(loop)
            group.add(call, deadline)
            if deadline <= loop.time():
                call._on_deadline()
                return False
    limit = call._max_send
    if limit is not None:
        sizes = [len(f) - 5 for f in frames]
        if any(size > limit for size in sizes):
            call._finish(
                StatusCode.RESOURCE_EXHAUSTED,
                f"trying to send message larger than max ({max(sizes)} vs. {limit})",
                None,
            )
            return False
    return True
