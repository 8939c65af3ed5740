"""The Channel (L5; grpc-go: ClientConn).

A channel owns, in grpc-go's shape:

- a resolver wrapper (``_resolver_wrapper``) around the resolver chosen by the
  target's scheme;
- a balancer wrapper (``_balancer_wrapper``) around a
  ``balancer.GracefulSwitchBalancer`` whose child is the policy chosen by the
  service config (``loadBalancingConfig`` / ``loadBalancingPolicy``) or
  ``grpc.lb_policy_name``: a new config naming another policy switches gracefully;
- the subchannels the balancer created (``_subchannel``), one transport each;
- the picker holder (``_picker``) that every RPC picks from;
- one callback serializer: every call into the resolver or the balancer, every
  subchannel state change and every plugin timer (``call_later``) runs on it, one
  at a time.

The channel starts IDLE and does nothing until the first RPC or a connect
request; after ``grpc.client_idle_timeout_ms`` without RPCs it goes back to IDLE,
closing its resolver, balancer and connections (grpc/grpc
doc/connectivity-semantics-and-api.md; A9).

Every connectivity change, resolver result and new picker is a trace event
(``snapshot().events``) and a line on the ``grpc_lite`` logger.

Who may call: coroutines on one event loop (the first one that uses the
channel).  Not thread-safe.
"""

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from . import _call, _interceptors, _observability, balancer
from ._balancer_wrapper import BalancerHost, BalancerWrapper
from ._call import Call, Compression
from ._call_factories import CallFactories
from ._channel_report import debug_info, subchannel_snapshot, trace_events
from ._connectivity import ConnectivityState, ConnectivityStateManager
from ._credentials import ChannelCredentials, local_address_error
from ._loop_guard import LoopGuard, close_socket, other_loop
from ._options import ChannelOptions, parse_options
from ._picker import Picked, PickerHolder
from ._resolver_wrapper import ResolverWrapper
from ._retry import RetryThrottler
from ._serializer import CallbackSerializer
from ._snapshot import ChannelSnapshot, TraceEvent, TraceLog
from ._subchannel import Subchannel
from ._target_plan import TargetPlan
from ._transport import KeepaliveParams
from .balancer import (
    BalancerState,
    ChannelState,
    ErrorPicker,
    GracefulSwitchBalancer,
    PickInfo,
)
from .health import WATCH_METHOD
from .resolver import Address, BuildOptions, ConfigSelector, ResolverState
from .service_config import MethodConfig, ServiceConfig, parse_service_config
from .status import RpcError, StatusCode, UsageError

log = logging.getLogger("grpc_lite")

_S = ConnectivityState
DEFAULT_LB_POLICY = "pick_first"
# How long close() waits for its sockets to close before aborting them.
_CLOSE_WAIT = 0.5
_running_loop = asyncio.get_running_loop


def _validate_lb_policy(name: str, config: Mapping[str, Any]) -> Any:
    """``lb_policy_validator`` for service config parsing: KeyError when not registered."""
    builder = balancer.get(name)
    if builder is None:
        raise KeyError(name)
    return builder.parse_config(config)


def parse_config(config: str | Mapping[str, Any]) -> ServiceConfig:
    return parse_service_config(config, lb_policy_validator=_validate_lb_policy)


class Channel(CallFactories, LoopGuard, BalancerHost):
    """A gRPC channel with grpc.aio's API (grpc-go: ClientConn)."""

    def __init__(
        self,
        target: str,
        options: Sequence[tuple[str, Any]] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        credentials: ChannelCredentials | None = None,
        service_config: str | Mapping[str, Any] | None = None,
        compression: Compression | None = None,
        interceptors: Sequence[Any] | None = None,
        observability: Sequence[Any] | None = None,
    ) -> None:
        # Immutable after __init__: everything is validated before anything is built,
        # so a bad argument never leaves a half-configured channel.
        if credentials is not None:
            if ssl_context is not None:
                raise ValueError("pass ssl_context or credentials, not both")
            ssl_context = credentials._context  # None for local credentials
        self._local = credentials.local if credentials is not None else None
        self._call_credentials = credentials.call_credentials if credentials is not None else None
        self.options: ChannelOptions = parse_options(options)
        self._raw_options: dict[str, Any] = dict(options or ())
        self._raw_options.pop("grpc.http_proxy", None)  # resolvers never see the password
        self._interceptors = _interceptors.validate(interceptors)
        _call.compression_encoding(compression)
        if compression is None and self.options.default_compression_algorithm is not None:
            compression = Compression(self.options.default_compression_algorithm)
        self._compression = compression
        self.target = target
        # The target's resolver and authority, the TLS name and the proxy plan.
        self._plan = plan = TargetPlan(target)
        # Observability plugins (grpc_lite.opentelemetry): the global ones and
        # ``observability``; None when there are none (nothing else is then done).
        self._observer = _observability.channel_observer(observability, target, plan.parsed.url)
        self.metrics_recorder = (
            self._observer.metrics_recorder if self._observer is not None else None
        )
        config = service_config if service_config is not None else self.options.service_config
        self._default_config: ServiceConfig | None = (
            parse_config(config) if config is not None else None
        )
        if (
            self.options.lb_policy_name is not None
            and balancer.get(self.options.lb_policy_name) is None
        ):
            raise ValueError(
                f"channel option 'grpc.lb_policy_name': no balancer named "
                f"{self.options.lb_policy_name!r} is registered"
            )
        self._ssl_context = ssl_context
        plan.plan_connections(self.options, ssl_context, self._local is not None)
        opts = self.options
        self._keepalive = (
            KeepaliveParams(
                time=opts.keepalive_time,
                timeout=opts.keepalive_timeout,
                permit_without_calls=opts.keepalive_permit_without_calls,
            )
            if opts.keepalive_time is not None
            else None
        )
        self._serializer = CallbackSerializer()
        self._trace = TraceLog()
        if plan.proxy_note is not None:
            self._trace.record("channel", plan.proxy_note)
            log.debug("grpc_lite: channel %s: %s", target, plan.proxy_note)
        self._state = ConnectivityStateManager(_S.IDLE, subject="channel")
        self._state.add_listener(self._state_changed)
        self._picker = PickerHolder()
        # Serializer-only.
        self._idle = True
        self._resolver: ResolverWrapper | None = None
        # A graceful switch whose child is the policy in force (and, during a switch, the
        # next one); built on leaving IDLE.
        self._balancer: BalancerWrapper[GracefulSwitchBalancer] | None = None
        self._service_config: ServiceConfig | None = None
        self._config_from_resolver = False
        # The config calls read (method configs, throttling); bumped on every change.
        self.config_generation = 0
        self._call_config: ServiceConfig | None = None
        # The ConfigSelector of the last resolver state whose service config was applied
        # (gRFC A31; grpc-go: ClientConn.safeConfigSelector); None for most resolvers.
        self.config_selector: ConfigSelector | None = None
        self.retry_throttler: RetryThrottler | None = None
        self.retry_buffer_used = 0
        # Attempts after a call's first, started on a subchannel the call had not used / had
        # (the attempt runner counts them; PickInfo.previous_subchannels).
        self.attempts_on_new_hosts = 0
        self.attempts_on_previous_hosts = 0
        # Set once the first resolver result (or error) decided the service config.
        self.config_known = False
        self._config_event = asyncio.Event()
        self._apply_call_config(self._default_config)
        self._addresses: list[str] = []
        self._resolver_error: str | None = None
        self._subchannels: dict[Subchannel, None] = {}
        self._retired: list[Subchannel] = []
        self._idle_timer: asyncio.TimerHandle | None = None
        # Any coroutine.
        self._calls: set[Call] = set()
        self._active_calls = 0
        self._active_since_check = False
        self._closed = False
        self._forked = False  # inherited by a child process (see _inherited)
        self.calls_started = 0
        self.calls_succeeded = 0
        self.calls_failed = 0
        self._init_guard()  # the loop binding (on first use) and the at-fork hook

    def __repr__(self) -> str:
        return f"<grpc_lite.Channel {self.target} {self._state.state.name}>"

    # ------------------------------------------------------------------ CallContext

    def _inherited(self) -> None:
        """In a child process after os.fork(): never touch the parent's connections.

        Runs in the at-fork hook, so nothing here may use the event loop: the channel is
        marked closed (calls raise UsageError) and the child's copies of the sockets are
        closed, which sends nothing while the parent still has them open."""
        super()._inherited()
        for sc in [*self._subchannels, *self._retired]:
            for transport in sc.transports:
                close_socket(transport)

    @property
    def default_compression(self) -> Compression | None:
        return self._compression

    def pick(self, info: PickInfo) -> Picked | None:
        # Hot path: the current picker, no allocation beyond what the picker does.
        return self._picker.pick_now(info)

    async def wait_for_pick(self, info: PickInfo, wait_for_ready: bool) -> Picked:
        if self._closed:
            raise RpcError(StatusCode.CANCELLED, "the channel is closed")
        if self._idle:
            self._serializer.schedule(self._exit_idle)
        return await self._picker.wait_for_pick(info, wait_for_ready)

    def call_started(self, call: Call) -> None:
        self.calls_started += 1
        self._active_calls += 1
        self._active_since_check = True
        self._calls.add(call)

    def call_finished(self, call: Call, code: StatusCode, picked: Picked | None) -> None:
        self._calls.discard(call)
        self._active_calls -= 1
        ok = code is StatusCode.OK
        if ok:
            self.calls_succeeded += 1
            throttler = self.retry_throttler
            if throttler is not None:
                throttler.record_success()  # A6: every successful RPC adds tokenRatio
        else:
            self.calls_failed += 1
        if picked is not None:  # (its PickResult.on_done ran: the call runs those)
            sc = picked[1]
            if ok:
                sc.calls_succeeded += 1
            else:
                sc.calls_failed += 1

    # ------------------------------------------------------------------ idleness (A9)

    def _exit_idle(self) -> None:
        """Serializer-only: build the resolver; the balancer follows its first result."""
        if self._closed:
            return
        if not self._idle:
            if self._balancer is not None:
                self._balancer.exit_idle()
            return
        self._idle = False
        self._trace.record("channel", "exiting idle mode")
        self._state.update_state(_S.CONNECTING)  # until the balancer reports (load-balancing.md)
        self._resolver = ResolverWrapper(
            builder=self._plan.builder,
            target=self._plan.parsed,
            options=BuildOptions(channel_options=self._raw_options),
            serializer=self._serializer,
            on_state=self._resolver_update,
            on_error=self._resolver_failed,
        )
        try:
            self._resolver.start()
        except Exception as exc:
            log.exception("grpc_lite: building the %r resolver failed", self._plan.parsed.scheme)
            self._resolver_failed(exc)
        self._arm_idle_timer()

    def _arm_idle_timer(self) -> None:
        timeout = self.options.client_idle_timeout
        if timeout <= 0 or self._closed:
            return
        self._idle_timer = self.loop.call_later(timeout, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self._closed or self._idle:
            return
        if self._active_calls > 0 or self._active_since_check:
            # Streams and recent calls keep the channel out of IDLE (as in grpc-go's idle manager).
            self._active_since_check = False
            self._arm_idle_timer()
            return
        self._serializer.schedule(self._enter_idle)

    def _enter_idle(self) -> None:
        if self._closed or self._idle or self._active_calls > 0:
            return
        self._trace.record("channel", "entering idle mode after the idle timeout")
        self._idle = True
        self._shutdown_control_plane()
        self._picker.picker = None
        self._picker.wake_all()
        self._state.update_state(_S.IDLE)

    def _shutdown_control_plane(self) -> None:
        if self._resolver is not None:
            resolver_wrapper = self._resolver
            self._resolver = None
            resolver_wrapper.close()
            self.loop.create_task(resolver_wrapper.wait_closed())
        if self._balancer is not None:
            self._balancer.close()
        self._balancer = None
        self._service_config = None
        self._config_from_resolver = False

    # ------------------------------------------------------------------ resolver results

    def _resolver_update(self, state: ResolverState) -> bool:
        """Serializer-only: a new resolver result (grpc-go: ClientConn.updateResolverState)."""
        if self._closed or self._idle:
            return False
        self._resolver_error = None
        self._addresses = [a.addr for a in state.addresses]
        self._trace.record(
            "resolver",
            f"resolved {len(self._addresses)} addresses: "
            + ", ".join(self._addresses[:16])
            + (" ..." if len(self._addresses) > 16 else ""),
        )
        config, config_error = self._choose_config(state)
        if config_error is None:
            # As grpc-go: a state whose service config is invalid keeps the selector in
            # force along with the last good config.
            self.config_selector = state.config_selector
        self._config_decided()
        if config_error is not None and config is None:
            # A21: a fresh channel with an invalid config and no
            # default treats it as a resolution failure; the addresses still go on.
            gsb = self._ensure_balancer(DEFAULT_LB_POLICY if self._balancer is None else "")
            gsb.resolver_error(
                RpcError(StatusCode.UNAVAILABLE, f"invalid service config: {config_error}")
            )
            return False
        name, lb_config = self._lb_policy(config)
        gsb = self._ensure_balancer(name)
        return gsb.update_channel_state(ChannelState(resolver_state=state, config=lb_config))

    def _choose_config(self, state: ResolverState) -> tuple[ServiceConfig | None, str | None]:
        """The service config to use for this update (A21)."""
        error = state.service_config_error
        if error is None and state.service_config is not None:
            try:
                config = parse_config(state.service_config)
            except ValueError as exc:
                error = str(exc)
            else:
                if self._service_config is None or config.raw != self._service_config.raw:
                    self._trace.record("channel", "service config from the resolver applied")
                self._service_config = config
                self._config_from_resolver = True
                self._apply_call_config(config)
                return config, None
        if error is not None:
            self._trace.record("resolver", f"invalid service config ignored: {error}")
            if self._service_config is not None:
                return self._service_config, error  # keep the last good one
            if self._default_config is not None:
                self._service_config = self._default_config
                self._apply_call_config(self._default_config)
                return self._default_config, error
            return None, error
        # The resolver has no config: the application's default, else an empty one.
        self._service_config = self._default_config
        self._config_from_resolver = False
        self._apply_call_config(self._default_config)
        return self._default_config, None

    def _apply_call_config(self, config: ServiceConfig | None) -> None:
        """Make ``config`` the one new calls use (method configs, retry throttling)."""
        if config is self._call_config:
            return
        old = self._call_config
        self._call_config = config
        self.config_generation += 1
        throttling = config.retry_throttling if config is not None else None
        if throttling is None:
            self.retry_throttler = None
        elif old is None or old.retry_throttling != throttling or self.retry_throttler is None:
            # A new config starts a full bucket (grpc-go's choice; C-core scales the tokens).
            self.retry_throttler = RetryThrottler.from_config(throttling)

    def _config_decided(self) -> None:
        if not self.config_known:
            self.config_known = True
            self._config_event.set()

    async def wait_for_config(self) -> None:
        """Until the first resolver result decided the service config (calls wait for it)."""
        if self.config_known:
            return
        if self._closed:
            raise RpcError(StatusCode.CANCELLED, "the channel is closed")
        if self._idle:
            self._serializer.schedule(self._exit_idle)
        await self._config_event.wait()
        if self._closed:
            raise RpcError(StatusCode.CANCELLED, "the channel is closed")

    def method_config(self, path: str) -> MethodConfig | None:
        config = self._call_config
        return config.method_config(path) if config is not None else None

    def record_event(self, subject: str, description: str) -> None:
        self._trace.record(subject, description)

    def _lb_policy(self, config: ServiceConfig | None) -> tuple[str, Any]:
        if config is not None:
            chosen = config.lb_policy_name(lambda n: balancer.get(n) is not None)
            if chosen is not None:
                name, lb_config = chosen
                if lb_config is None:
                    builder = balancer.get(name)
                    assert builder is not None
                    lb_config = builder.parse_config({})
                return name, lb_config
        name = self.options.lb_policy_name or DEFAULT_LB_POLICY
        builder = balancer.get(name)
        assert builder is not None
        return name, builder.parse_config({})

    def _resolver_failed(self, exc: Exception) -> None:
        """Serializer-only: the resolver failed."""
        if self._closed or self._idle:
            return
        message = f"name resolution failed for target {self.target!r}: {exc}"
        self._resolver_error = message
        self._config_decided()  # RPCs proceed with the default config and fail at the pick
        self._trace.record("resolver", message)
        name = self._lb_policy(self._service_config)[0] if self._balancer is None else ""
        self._ensure_balancer(name).resolver_error(RpcError(StatusCode.UNAVAILABLE, message))

    def _ensure_balancer(self, name: str) -> GracefulSwitchBalancer:
        """Serializer-only: build the balancer, or start a graceful switch to another policy.

        ``name`` "" keeps the policy in force; it, like a switch back to the policy in
        force, abandons a switch under way.
        """
        wrapper = self._balancer
        if wrapper is None:
            wrapper = self._balancer = BalancerWrapper(
                build=GracefulSwitchBalancer, host=self, serializer=self._serializer
            )
        gsb = wrapper.balancer
        current = gsb.current_policy
        if current is not None and not name:
            name = current
        if current is None:
            self._trace.record("channel", f"load balancing policy {name}")
        elif name not in (current, gsb.pending_policy):
            self._trace.record("channel", f"switching load balancing policy {current} -> {name}")
        builder = balancer.get(name)
        if builder is not None:  # None only if the policy in force was unregistered since
            gsb.switch_to(builder)
        return gsb

    # ------------------------------------------------------------------ BalancerHost

    def new_subchannel(
        self,
        addresses: tuple[Address, ...],
        on_state_change: Callable[[Subchannel, ConnectivityState, str | None], None],
        health_check: bool = False,
    ) -> Subchannel:
        self.loop  # noqa: B018 - bind the loop
        watch = self._method(WATCH_METHOD, None, None)
        proxies = self._plan.proxies_for(addresses)
        sc = Subchannel(
            addresses,
            backoff=self.options.backoff,
            ssl_context=self._ssl_context,
            server_hostname=self._plan.server_hostname,
            on_state_change=lambda s, state, err: self._subchannel_changed(
                s, state, err, on_state_change
            ),
            on_event=self._trace.record,
            health_service=self._health_service if health_check else None,
            keepalive=self._keepalive,
            proxies=proxies,
            check_address=self._check_local_address if self._local is not None else None,
            metrics=self.metrics_recorder,
            watch_header=(
                watch.pseudo_block + watch.defs_block,
                watch.pseudo_size + watch.defs_size,
            ),
        )
        self._subchannels[sc] = None
        self._trace.record(sc.subject, "created")
        return sc

    def _check_local_address(self, address: str) -> str | None:
        assert self._local is not None
        return local_address_error(self._local, address)

    def _health_service(self) -> str | None:
        """The service name to health-check, or None when the config has no healthCheckConfig."""
        config = self._service_config
        return config.health_check_service if config is not None else None

    def _subchannel_changed(
        self,
        sc: Subchannel,
        state: ConnectivityState,
        error: str | None,
        forward: Callable[[Subchannel, ConnectivityState, str | None], None],
    ) -> None:
        if state is _S.SHUTDOWN:
            self._subchannels.pop(sc, None)
            self._retired.append(sc)
            del self._retired[:-64]
        elif state is _S.IDLE and error is not None:
            # A lost or drained connection: ask for fresh addresses (grpc-go: resetTransport).
            self._serializer.schedule(self.resolve_now)
        forward(sc, state, error)

    def balancer_state(self, wrapper: BalancerWrapper[Any], state: BalancerState) -> None:
        """Serializer-only: the balancer published a state and picker."""
        if wrapper is not self._balancer or self._closed or self._idle:
            return
        self._picker.update(state.picker)
        self._trace.record("picker", f"new picker for state {state.state.name}")
        self._state.update_state(state.state)

    def resolve_now(self) -> None:
        if self._resolver is not None:
            self._resolver.resolve_now()

    # ------------------------------------------------------------------ state and events

    def _state_changed(self, old: ConnectivityState, new: ConnectivityState) -> None:
        self._trace.record("channel", f"{old.name} -> {new.name}")

    def add_trace_listener(self, listener: Callable[[TraceEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every new trace event; returns a remover."""
        return self._trace.add_listener(listener)

    def trace_events(self) -> AsyncIterator[TraceEvent]:
        """Every new trace event as it happens, until the channel is closed.

        ``async for event in channel.trace_events(): ...`` (the ``grpc-lite watch``
        command's view).  Events are delivered in order; nothing polls.
        """
        return trace_events(self._trace, self._state, lambda: self._closed)

    def snapshot(self) -> ChannelSnapshot:
        """Everything the channel knows about its connectivity, for debugging."""
        wrapper = self._balancer
        subchannels = list(self._subchannels) if not self._closed else self._retired[-64:]
        return ChannelSnapshot(
            target=self.target,
            state=self._state.state,
            lb_policy=policy
            if wrapper is not None and (policy := wrapper.balancer.current_policy) is not None
            else (self._lb_policy(self._default_config)[0]),
            addresses=list(self._addresses),
            service_config=self._service_config.raw if self._service_config else None,
            resolver_error=self._resolver_error,
            subchannels=[subchannel_snapshot(sc) for sc in subchannels],
            calls_started=self.calls_started,
            calls_succeeded=self.calls_succeeded,
            calls_failed=self.calls_failed,
            events=self._trace.events(),
            attempts_on_new_hosts=self.attempts_on_new_hosts,
            attempts_on_previous_hosts=self.attempts_on_previous_hosts,
            resolver=debug_info("resolver", self._resolver),
            balancer=debug_info(
                "balancer", wrapper.balancer.current if wrapper is not None else None
            ),
        )

    # ------------------------------------------------------------------ public API

    def get_state(self, try_to_connect: bool = False) -> ConnectivityState:
        if self._forked:
            return _S.SHUTDOWN
        if try_to_connect and not self._closed:
            self._check_loop()
            state = self._state.state
            if state is _S.IDLE:
                self.loop  # noqa: B018 - bind the loop
                self._serializer.schedule(self._exit_idle)
        return self._state.state

    async def wait_for_state_change(self, last_observed_state: ConnectivityState) -> None:
        self._check_loop()
        await self._state.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        self._check_loop()
        while True:
            state = self.get_state(try_to_connect=True)
            if state is _S.READY:
                return
            if state is _S.SHUTDOWN:
                raise UsageError("Channel is closed.")
            await self._state.wait_for_state_change(state)

    async def close(self, grace: float | None = None) -> None:
        """Cancel outstanding calls (after ``grace`` seconds if given); everything goes SHUTDOWN."""
        if self._closed:
            return
        loop = self._loop
        if loop is not None and loop is not _running_loop():
            if not loop.is_closed():
                raise UsageError(other_loop(self.target, loop))
            # Its loop is gone, and with it every task and callback: close the sockets.
            self._inherited()
            self._forked = False
            return
        self._closed = True
        if grace and self._calls:
            try:
                async with asyncio.timeout(grace):
                    for call in list(self._calls):
                        while not call.done():
                            await call._wait()
            except TimeoutError:
                pass
        for call in list(self._calls):
            if not call.done():
                call._finish(StatusCode.CANCELLED, "Channel closed!", None)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        resolver_wrapper = self._resolver
        self._resolver = None
        if resolver_wrapper is not None:
            resolver_wrapper.close()
        if self._balancer is not None:
            # Through the serializer, as every call into the balancer (this coroutine is not
            # inside a callback: it runs at once), before the serializer closes.
            self._serializer.schedule(self._balancer.close)
        transports = [t for sc in [*self._subchannels, *self._retired] for t in sc.transports]
        for sc in list(self._subchannels):
            sc.shutdown()
        self._serializer.close()
        self._picker.picker = ErrorPicker(RpcError(StatusCode.CANCELLED, "the channel is closed"))
        self._picker.wake_all()
        self._config_event.set()
        self._state.update_state(_S.SHUTDOWN)
        if resolver_wrapper is not None:
            await resolver_wrapper.wait_closed()
        # Wait (briefly) until the sockets are really closed, so that a program ending
        # right after close() leaves nothing open; a TLS peer that never answers the
        # close_notify does not hold the socket for asyncio's 30 s SSL shutdown.
        if transports:
            waits = [asyncio.ensure_future(t.wait_closed()) for t in transports]
            _, pending = await asyncio.wait(waits, timeout=_CLOSE_WAIT)
            for fut in pending:
                fut.cancel()
            for t in transports:
                t.abort()
            if pending:
                await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def __aenter__(self) -> "Channel":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
