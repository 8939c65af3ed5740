"""The attempts of a call: retries, hedging, transparent retries, the replay buffer (L5; A6).

grpc-go counterpart: the retry half of ``clientStream`` (``withRetry``, ``retryLocked``,
``replayBufferLocked``) and ``csAttempt`` in stream.go.

A call that needs one attempt never makes a runner: the unary fast path picks and starts its
stream itself (`grpc_lite._call`). Every other call hands its attempts to an `AttemptRunner`:
a call with a retryPolicy or a hedgingPolicy, one whose pick must wait, whose call
credentials must run first or whose service config is not known yet, one that streams
requests (the replay buffer lives here), and a plain call whose stream the server never
processed (handed over then, for a transparent retry).

The runner's `Phase` says which rules apply; `TRANSITIONS` lists the legal moves and
`AttemptRunner._enter` is the only writer of ``phase``. What to do when an attempt ends comes
from the pure functions of `grpc_lite._retry` (`decide_retry`, `decide_hedge`,
`decide_transparent_retry`); the runner executes their decisions. It owns the timers (backoff,
next hedge, per-attempt receive timeouts), the task picking the next attempt, the hedged
attempts in flight and the replay buffer. The call keeps what the application sees: the
attempt it reads from (``_stream``), the status, and its single completion path,
``Call._finish``, which closes the runner.

Phases and moves, with a retryPolicy or none (`TRANSITIONS` has each move's reason)::

           +------------ transparent retry ------------+
           v                                           |
        PICKING ----------- stream started -------> ACTIVE ---- response headers ---> COMMITTED
           |   ^                                       |        (or the replay buffer
           |   +------ backoff timer fired ------+     |         overflowed)
           |                                     |     |
           +---- pick failed, retried -----> BACKOFF <-+---- failed, decide_retry: Retry

with a hedgingPolicy (the first attempt and every hedged one run in HEDGING)::

        HEDGING ---- headers or OK on one attempt, or the buffer overflowed ----> COMMITTED
           |                                                                        ^
           +-- pushback "don't retry", throttled --> HEDGING_STOPPED -- the same ---+

and from every phase, DONE when the call ends (status, deadline, cancel).

Every attempt's pick is done once (``PickResult.on_done``; grpc-go: csAttempt.finish and
balancer.DoneInfo): the runner keeps the picks of the attempts it started whose result has an
``on_done`` and runs it with the attempt's final status when the attempt ends without being
the call's last (retried, transparently retried, a hedge that lost or failed), and with the
call's status for the rest when the call ends (`AttemptRunner.close`).

Who may call: the call that owns the runner, on the channel's loop; the runner calls back
only the members of `AttemptHost`.
"""

import asyncio
import enum
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ._picker import Picked, pick_done
from ._retry import (
    PUSHBACK_HEADER,
    Hedge,
    NoHedgeReason,
    PushbackResult,
    Retry,
    TransparentRetry,
    decide_hedge,
    decide_retry,
    decide_transparent_retry,
    parse_pushback,
)
from ._transport import ClientStream
from .balancer import DroppedRpcError, PickInfo, PickResult
from .metadata import Metadata
from .status import RpcError, StatusCode

if TYPE_CHECKING:
    from ._observability import AttemptTracer, CallTracer
    from ._options import ChannelOptions
    from ._retry import RetryThrottler
    from ._subchannel import Subchannel
    from .service_config import HedgingPolicy, RetryPolicy

__all__ = ["TRANSITIONS", "AttemptHost", "AttemptRunner", "Phase"]

# Request bytes kept for a transparent retry of a streaming call without a retry or hedging
# policy; past them the call commits to its attempt (A6 §Memory Management's default).
REPLAY_LIMIT = 256 * 1024


class Phase(enum.IntEnum):
    """Which rules apply to a call's attempts now (an IntEnum: hashed as an int)."""

    PICKING = 1
    """No attempt in flight: the next one waits for the service config, call credentials or
    a pick (a retryPolicy, or none)."""
    ACTIVE = 2
    """One attempt in flight, not committed (a retryPolicy, or none)."""
    BACKOFF = 3
    """The last attempt failed and `decide_retry` said retry: the next one starts when the
    backoff timer fires."""
    HEDGING = 4
    """A hedgingPolicy: hedged attempts in flight or being picked, the next one on a timer."""
    HEDGING_STOPPED = 5
    """A hedgingPolicy after a "don't retry" pushback or throttling: no more hedged attempts;
    those in flight go on and the first response still wins."""
    COMMITTED = 6
    """One attempt is the call's from now on (A6 §When Retries are Valid): no retry, no
    hedge; only a transparent retry of an attempt the server never saw. Committed while no
    attempt was in flight, the next one to start is the last."""
    DONE = 7
    """The call has its status; nothing starts any more."""


_P = Phase

TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    {
        (_P.PICKING, _P.ACTIVE),  # the attempt's stream started
        (_P.PICKING, _P.BACKOFF),  # the pick or the call credentials failed; retried
        (_P.PICKING, _P.HEDGING),  # the method config has a hedgingPolicy
        (_P.PICKING, _P.COMMITTED),  # the request outgrew the replay buffer before an attempt
        (_P.ACTIVE, _P.PICKING),  # transparent retry (A6 §Transparent Retries)
        (_P.ACTIVE, _P.BACKOFF),  # the attempt failed; decide_retry said retry
        (_P.ACTIVE, _P.COMMITTED),  # response headers, or the replay buffer overflowed
        (_P.BACKOFF, _P.PICKING),  # the backoff timer fired
        (_P.BACKOFF, _P.COMMITTED),  # the replay buffer overflowed during the backoff
        (_P.HEDGING, _P.HEDGING_STOPPED),  # pushback "don't retry", or throttled
        (_P.HEDGING, _P.COMMITTED),  # headers or OK on one attempt, or the buffer overflowed
        (_P.HEDGING_STOPPED, _P.COMMITTED),
    }
    | {(p, _P.DONE) for p in _P if p is not _P.DONE}
)
"""Legal (old, new) phase moves. A move to the phase the runner is in is illegal too."""

_NEXT: dict[Phase, frozenset[Phase]] = {
    old: frozenset(new for o, new in TRANSITIONS if o is old) for old in _P
}

# Hot path: the members as module globals (reading an enum member costs ~70 ns on 3.11).
_PICKING, _ACTIVE, _BACKOFF, _HEDGING, _HEDGING_STOPPED, _COMMITTED, _DONE = Phase
_OK = StatusCode.OK


class AttemptChannel(Protocol):
    """What a runner needs from the call's channel (a part of `_call.CallContext`)."""

    retry_buffer_used: int
    attempts_on_new_hosts: int
    attempts_on_previous_hosts: int

    @property
    def options(self) -> "ChannelOptions": ...

    @property
    def retry_throttler(self) -> "RetryThrottler | None": ...

    def pick(self, info: PickInfo) -> Picked | None:
        """A READY pick now, or None; raises `DroppedRpcError` for a drop."""

    async def wait_for_pick(self, info: PickInfo, wait_for_ready: bool) -> Picked: ...

    async def wait_for_config(self) -> None: ...

    def record_event(self, subject: str, description: str) -> None: ...


class AttemptMethod(Protocol):
    """What a runner needs from the call's method (`_call.Method`)."""

    @property
    def channel(self) -> AttemptChannel: ...

    @property
    def path(self) -> str: ...


class AttemptHost(Protocol):
    """What a runner needs from its call (implemented by `_call.Call`)."""

    _stream: ClientStream | None
    """The attempt the application reads from and writes to; the runner sets it."""

    @property
    def _code(self) -> StatusCode | None:
        """The call's status, once it ended."""

    @property
    def _picked(self) -> Picked | None:
        """The pick of the call's latest attempt (its channel subchannel is item 1)."""

    @property
    def _tracer(self) -> "CallTracer | None":
        """The observability plugins' tracer of the call (None: no plugin)."""

    _attempt: "AttemptTracer | None"
    """The tracer of the attempt being picked (set by the runner with `_tracer`; the call
    hands it to the attempt's stream)."""

    @property
    def _loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def _pick_info(self) -> PickInfo:
        """What the picks of the call's attempts are told: the method, the call's metadata
        and its config selector's attributes (a later attempt's adds the subchannels
        tried)."""

    @property
    def _on_committed(self) -> object | None:
        """The config selector's commit callback, until `_committed` ran it."""

    def _committed(self) -> None:
        """The call committed: run the config selector's ``on_committed`` (once)."""

    def _dropped(self, exc: RpcError) -> None:
        """The balancer dropped the call: it fails at once, with no retry of any kind."""

    @property
    def _method(self) -> AttemptMethod: ...

    @property
    def _unary_request(self) -> bool: ...

    @property
    def _request_frame(self) -> bytes: ...

    @property
    def _half_closed(self) -> bool: ...

    @property
    def _config_pending(self) -> bool: ...

    @property
    def _wait_for_ready(self) -> bool: ...

    @property
    def _creds(self) -> object | None:
        """Call credentials whose plugins run before each attempt, or None."""

    def _configure(self, started: float, frames: Sequence[bytes]) -> bool:
        """Apply the service config that arrived after the call started; False when that
        failed the call."""

    async def _call_credentials(self) -> str | None:
        """Run the call credentials' plugins for the next attempt; the failure, or None."""

    def _start_on(self, picked: Picked) -> None:
        """Open the next attempt's stream on ``picked`` (it calls `AttemptRunner.started`)."""

    def _finish(self, code: StatusCode, details: str, trailing: Metadata | None) -> None:
        """The call's single completion path (it calls `AttemptRunner.close`)."""


def _pushback(trailing: Metadata | None) -> PushbackResult:
    if not trailing:
        return None
    return parse_pushback([v for v in trailing.get_all(PUSHBACK_HEADER) if isinstance(v, str)])


class TriedSubchannels:
    """The subchannels a call's attempts were started on, for the picks of its later
    attempts: `PickInfo.previous_subchannels`, so that the balancer prefers a READY one the
    call has not tried (a grpc_lite extension after Envoy's
    ``envoy.retry_host_predicates.previous_hosts``; A6 leaves the host of a retry or a hedge
    to the balancer). With ``avoiding`` off (the channel option
    ``grpc_lite.avoid_previous_hosts`` = 0, or the policy's ``avoidPreviousHosts: false``)
    the picks are not told; where the attempts went is counted either way. Made at a call's
    second pick: its first attempt pays nothing."""

    __slots__ = ("avoiding", "subchannels")

    def __init__(self, avoiding: bool) -> None:
        self.avoiding = avoiding
        self.subchannels: list[Subchannel] = []

    def pick_info(self, first: PickInfo, last: "Subchannel") -> PickInfo:
        """What the next attempt's pick is told: the first attempt's ``first``, plus the
        subchannels tried; ``last``: the latest attempt's subchannel."""
        if last not in self.subchannels:
            self.subchannels.append(last)
        if not self.avoiding:
            return first
        return PickInfo(
            method=first.method,
            previous_subchannels=tuple(self.subchannels),
            metadata=first.metadata,
            attributes=first.attributes,
        )

    def placed(self, ctx: AttemptChannel, attempt: str, sc: "Subchannel", hedged: bool) -> None:
        """An attempt after the call's first started on ``sc``: count whether the call had
        tried it (`Channel.snapshot()`) and say so in a trace event."""
        previous = self.subchannels
        subject = "hedge" if hedged else "retry"
        where = f"{attempt} on {sc.address}"
        if sc in previous:
            ctx.attempts_on_previous_hosts += 1
            why = (
                "no READY subchannel it has not tried"
                if self.avoiding
                else "avoidPreviousHosts is off"
            )
            ctx.record_event(subject, f"{where} again, which the call had tried ({why})")
            return
        ctx.attempts_on_new_hosts += 1
        tried = ", ".join(p.address for p in previous)
        if not self.avoiding:
            ctx.record_event(subject, f"{where} (had tried {tried}; avoidPreviousHosts is off)")
            return
        for p in previous:
            p.attempts_avoided += 1
        ctx.record_event(subject, f"{where}, avoiding {tried}")


class AttemptRunner:
    """Starts a call's attempts and decides, by its phase, what follows when one ends.

    Who may call: the owning call (`AttemptHost`), on the channel's loop.
    """

    __slots__ = (
        "_attempt_timers",
        "_buffered",
        "_call",
        "_ctx",
        "_dones",
        "_hedges",
        "_hedging",
        "_pick_task",
        "_policy",
        "_queued",
        "_refused_retries",
        "_replay",
        "_since_pushback",
        "_timer",
        "_transparent_retries",
        "_tried",
        "attempts",
        "phase",
        "replay_size",
    )

    def __init__(
        self, call: AttemptHost, policy: "RetryPolicy | None", hedging: "HedgingPolicy | None"
    ) -> None:
        self._call = call
        self._ctx = call._method.channel
        self.phase = _HEDGING if hedging is not None else _PICKING
        self._policy = policy
        self._hedging = hedging
        # Counted attempts started (transparent retries excluded, A6 §Transparent Retries).
        self.attempts = 1
        self._since_pushback: int | None = None
        # The backoff timer (retryPolicy) or the next hedged attempt's (hedgingPolicy).
        self._timer: asyncio.TimerHandle | None = None
        # perAttemptRecvTimeout timers of the attempts in flight (made with the first one).
        self._attempt_timers: dict[ClientStream, asyncio.TimerHandle] | None = None
        # Uncommitted hedged attempts in flight (a list with a hedgingPolicy only).
        self._hedges: list[ClientStream] | tuple[()] = [] if hedging is not None else ()
        # The picks with an on_done of the attempts started and not done yet (made with
        # the first one; `_track`, `_done`).
        self._dones: dict[ClientStream, PickResult] | None = None
        # The subchannels of the call's attempts, from its second pick on (`_pick_info`).
        self._tried: TriedSubchannels | None = None
        # Waits for the service config, the call credentials or the pick of the next attempt.
        self._pick_task: asyncio.Task[None] | None = None
        # Transparent retries queued for the next loop iteration.
        self._queued = 0
        # Request bytes counted against the channel's retry buffer limits.
        self._buffered = 0
        # A streaming request's frames, kept for a replay (None: dropped, or unary).
        self._replay: list[bytes] | None = None if call._unary_request else []
        self.replay_size = 0
        self._transparent_retries = 0
        self._refused_retries = 0

    def __repr__(self) -> str:
        return f"<AttemptRunner {self._call._method.path} {self.phase.name}>"

    def _enter(self, new: Phase) -> None:
        """The only writer of ``phase``: checks the move against `TRANSITIONS`."""
        if new not in _NEXT[self.phase]:
            old = self.phase
            raise AssertionError(
                f"{self._call._method.path}: invalid attempt phase move {old.name} -> {new.name}"
            )
        self.phase = new

    # ------------------------------------------------------------------ from the call

    def use_policy(self, policy: "RetryPolicy | None", hedging: "HedgingPolicy | None") -> None:
        """The method config's retry or hedging policy, when the service config arrived
        after the runner was made (before the first attempt)."""
        self._policy = policy
        self._hedging = hedging
        if hedging is not None:
            self._hedges = []
            self._enter(_HEDGING)

    def start(self) -> None:
        """Start the call's first attempt (once the service config is known)."""
        call = self._call
        if call._config_pending:
            loop = call._loop
            self._pick_task = loop.create_task(self._await_config(loop.time()))
            return
        if call._unary_request and (self._policy is not None or self._hedging is not None):
            # Hot path: what _buffer does, inline: the request counts against the replay
            # limits; too large to replay, the call commits at once (A6 §Memory Management).
            ctx = self._ctx
            size = len(call._request_frame)
            self._buffered = size
            used = ctx.retry_buffer_used = ctx.retry_buffer_used + size
            opts = ctx.options
            if size > opts.per_rpc_retry_buffer_size or used > opts.retry_buffer_size:
                self._commit(None)
        if call._creds is None:  # hot path: what _begin does, inline
            tracer = call._tracer
            if tracer is not None and call._attempt is None:  # (unless the fast path began it)
                call._attempt = tracer.start_attempt(False)
            try:
                picked = self._ctx.pick(call._pick_info)
            except DroppedRpcError as exc:
                call._dropped(exc)
                return
            if picked is not None:
                call._start_on(picked)
            else:
                self._pick_task = call._loop.create_task(self._pick_slow())
        else:
            self._begin()
        hedging = self._hedging
        if hedging is not None:
            _schedule_hedge(self, hedging.hedging_delay)

    def take_over(self, stream: ClientStream) -> bool:
        """The call's own single attempt ended unprocessed: from now on the runner starts
        the attempts (a transparent retry, A6 §Transparent Retries). As `attempt_done`."""
        self._enter(_ACTIVE)
        picked = self._call._picked
        assert picked is not None
        if picked[2].on_done is not None:
            self._track(stream, picked[2])
        return self.attempt_done(stream)

    def started(self, stream: ClientStream) -> None:
        """``stream`` is the next attempt (from ``Call._start_on``, before the transport
        starts it): track it and queue the request, replayed, on it."""
        call = self._call
        picked = call._picked
        assert picked is not None
        if picked[2].on_done is not None:
            self._track(stream, picked[2])
        tried = self._tried
        if tried is not None:  # an attempt after the call's first: count where it went
            attempt = f"{call._method.path}: attempt {self.attempts}"
            tried.placed(self._ctx, attempt, picked[1], self._hedging is not None)
        phase = self.phase
        if phase is _HEDGING or phase is _HEDGING_STOPPED:
            hedges = self._hedges
            assert isinstance(hedges, list)  # made with the hedgingPolicy
            hedges.append(stream)
        else:
            call._stream = stream
            if phase is _PICKING:
                self._enter(_ACTIVE)
        chosen = self._hedging or self._policy
        if chosen is not None and phase is not _COMMITTED:
            timeout = chosen.per_attempt_recv_timeout
            if timeout is not None:
                timers = self._attempt_timers
                if timers is None:
                    timers = self._attempt_timers = {}
                timers[stream] = call._loop.call_later(timeout, self._attempt_timed_out, stream)
        if call._unary_request:
            stream.send(call._request_frame, True)
            return
        for frame in self._replay or ():
            stream.send(frame, False)
        if call._half_closed:
            stream.send(b"", True)
        if phase is _COMMITTED:
            self._replay = None  # the committed attempt has it all: nothing to replay

    def headers(self, stream: ClientStream) -> None:
        """Response headers on ``stream`` commit the call to it (A6 §When Retries are Valid)."""
        phase = self.phase
        if phase is _ACTIVE:
            if stream is self._call._stream:
                # Hot path: what _commit does for the one attempt in flight, inline (no
                # backoff or hedge timer runs in ACTIVE).
                self._enter(_COMMITTED)
                if self._attempt_timers:
                    self._cancel_attempt_timer(stream)
                call = self._call
                if call._on_committed is not None:
                    call._committed()
                self._replay = None
                if self._buffered:
                    self._ctx.retry_buffer_used -= self._buffered
                    self._buffered = 0
        elif (phase is _HEDGING or phase is _HEDGING_STOPPED) and stream in self._hedges:
            self._commit(stream)

    def attempt_done(self, stream: ClientStream) -> bool:
        """An attempt ended (the call is not done): retry it, hedge, transparently retry, or
        say True: its status is the call's (``Call.stream_done`` then finishes with it)."""
        phase = self.phase
        if phase is _HEDGING or phase is _HEDGING_STOPPED:
            _hedge_done(self, stream)
            return False
        call = self._call
        if stream is not call._stream:
            if self._dones:  # (a hedge that lost, cancelled by the commit)
                self._done(stream, stream.code)
            return False
        if self._attempt_timers:
            self._cancel_attempt_timer(stream)
        if stream.unprocessed and self._transparent_retry(stream):
            call._stream = None
            if phase is _ACTIVE:
                self._enter(_PICKING)
            if self._dones:
                self._done(stream, stream.code)
            self._queue_start()
            return False
        code = stream.code
        assert code is not None
        if code is _OK or self._policy is None:
            return True  # the call's last attempt: `close` runs its pick's on_done
        if not self._retry(code, stream.trailing_metadata, stream.per_attempt_timeout):
            return True
        if self._dones:
            self._done(stream, code)
        return False

    def send(self, frame: bytes) -> None:
        """A request message of a streaming call: to the attempts in flight, and kept for a
        replay while the call may still need one."""
        replay = self._replay
        if replay is not None:
            replay.append(frame)
            self.replay_size += len(frame)
        stream = self._call._stream
        if stream is not None:
            stream.send(frame, False)
        else:
            for hedge in self._hedges:
                hedge.send(frame, False)
        if self.phase is _COMMITTED:
            return
        if self._policy is None and self._hedging is None:
            if stream is not None and replay is not None and self.replay_size > REPLAY_LIMIT:
                self._commit(stream)  # too much to replay: no transparent retry any more
            return
        if not self._buffer(len(frame)):
            # Over the replay buffer limit the call commits (A6 §Memory Management): to the
            # attempt in flight, or, while none is, to the next one.
            if stream is None and self._hedges:
                stream = self._hedges[0]
            self._commit(stream)
            call = self._call
            call._method.channel.record_event(
                "retry", f"{call._method.path}: replay buffer limit exceeded; committed"
            )

    def half_close(self) -> None:
        """The application is done writing and no attempt is the call's yet."""
        for hedge in self._hedges:
            hedge.send(b"", True)

    def close(self, code: StatusCode, details: str) -> None:
        """The call ended (``Call._finish``): stop everything still running."""
        self._enter(_DONE)
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
        if self._attempt_timers:
            for t in self._attempt_timers.values():
                t.cancel()
            self._attempt_timers.clear()
        if self._hedges:
            hedges, self._hedges = self._hedges, []
            for other in hedges:
                other.cancel(code, details)
        task = self._pick_task
        if task is not None:
            self._pick_task = None
            task.cancel()
        if self._buffered:
            self._ctx.retry_buffer_used -= self._buffered
            self._buffered = 0
        dones = self._dones
        if dones:
            # The attempts not done yet end with the call: the call's own attempt with its
            # status (as grpc-go's clientStream.finish), the others (hedges, cancelled
            # above) with theirs.
            self._dones = None
            last = self._call._stream
            for stream, result in dones.items():
                own = stream.code
                pick_done(result, code if own is None or stream is last else own)

    # ------------------------------------------------------------------ picks' on_done

    def _track(self, stream: ClientStream, result: PickResult) -> None:
        """``stream``'s attempt was picked with ``result``, which has an ``on_done``."""
        dones = self._dones
        if dones is None:
            dones = self._dones = {}
        dones[stream] = result

    def _done(self, stream: ClientStream, code: StatusCode | None) -> None:
        """``stream``'s attempt ended with ``code`` and is not the call's last: run its
        pick's ``on_done`` (once: it is forgotten first)."""
        dones = self._dones
        result = dones.pop(stream, None) if dones is not None else None
        if result is not None:
            pick_done(result, code if code is not None else StatusCode.CANCELLED)
        self._replay = None

    # ------------------------------------------------------------------ starting attempts

    async def _await_config(self, started: float) -> None:
        """Wait for the channel's first service config (grpc-go waitForResolvedAddrs), let
        the call apply it, then start."""
        call = self._call
        try:
            await call._method.channel.wait_for_config()
        except RpcError as exc:
            self._pick_task = None
            call._finish(exc.code(), exc.details() or "", None)
            return
        self._pick_task = None
        if self.phase is _DONE:
            return
        tracer = call._tracer
        if tracer is not None:
            tracer.resolution_delayed()
        frames = [call._request_frame] if call._unary_request else self._replay or ()
        if not call._configure(started, frames):
            return
        if (
            not call._unary_request
            and (self._policy is not None or self._hedging is not None)
            and self.replay_size
            and not self._buffer(self.replay_size)
        ):
            self._commit(None)
        self.start()

    def _begin(self, transparent: bool = False) -> None:
        """Pick and start the next attempt: at once when the picker has a READY subchannel,
        else in a task (after the call credentials' plugins, when there are some).
        ``transparent``: a transparent retry (for the observability plugins)."""
        call = self._call
        tracer = call._tracer
        if tracer is not None:  # the attempt starts before its pick (A66)
            call._attempt = tracer.start_attempt(transparent, self._hedging is not None)
        if call._creds is not None:
            self._pick_task = call._loop.create_task(self._authorize())
        else:
            self._pick()

    def _pick(self) -> None:
        """Start the attempt on a READY pick at once, or wait for one in a task."""
        try:
            picked = self._ctx.pick(self._pick_info())
        except DroppedRpcError as exc:
            self._call._dropped(exc)
            return
        if picked is not None:
            self._call._start_on(picked)
        else:
            self._pick_task = self._call._loop.create_task(self._pick_slow())

    async def _authorize(self) -> None:
        """Run the call credentials' plugins, then pick and start the attempt."""
        call = self._call
        error = await call._call_credentials()
        self._pick_task = None
        if self.phase is _DONE:
            return
        if error is not None:
            self._attempt_failed(StatusCode.UNAVAILABLE, error)
        else:
            self._pick()

    async def _pick_slow(self) -> None:
        call = self._call
        try:
            picked = await self._ctx.wait_for_pick(self._pick_info(), call._wait_for_ready)
        except DroppedRpcError as exc:
            self._pick_task = None
            call._dropped(exc)
            return
        except RpcError as exc:
            self._pick_task = None
            self._attempt_failed(exc.code(), exc.details() or "")
            return
        self._pick_task = None
        if self.phase is not _DONE:
            attempt = call._attempt
            if attempt is not None:
                attempt.pick_delayed()
            call._start_on(picked)
        else:  # the call ended while this task was being woken: the pick is not used
            code = call._code
            pick_done(picked[2], code if code is not None else StatusCode.CANCELLED)

    def _pick_info(self) -> PickInfo:
        """What the balancer is told of the attempt to pick: after the call's first attempt,
        the subchannels its attempts were started on (`TriedSubchannels`)."""
        call = self._call
        picked = call._picked
        if picked is None:
            return call._pick_info  # the call's first attempt
        tried = self._tried
        if tried is None:
            chosen = self._hedging or self._policy
            tried = self._tried = TriedSubchannels(
                self._ctx.options.avoid_previous_hosts
                and (chosen is None or chosen.avoid_previous_hosts)
            )
        return tried.pick_info(call._pick_info, picked[1])

    def _attempt_failed(self, code: StatusCode, details: str) -> None:
        """An attempt failed before anything was sent (its pick, its call credentials): a
        fail-fast pick failure is an attempt's failure too, retried by the retryPolicy."""
        attempt = self._call._attempt
        if attempt is not None:
            self._call._attempt = None
            attempt.end(code, details)
        if self._policy is not None and self._retry(code, None, False):
            return
        self._call._finish(code, details, None)

    def _queue_start(self) -> None:
        """Start an attempt again on the next loop iteration (out of the transport's
        callback that ended the last one)."""
        self._queued += 1
        self._call._loop.call_soon(self._start_queued)

    def _start_queued(self) -> None:
        self._queued -= 1
        phase = self.phase
        if phase is _DONE:
            return
        if (
            phase is _HEDGING
            or phase is _HEDGING_STOPPED
            or (self._call._stream is None and self._pick_task is None)
        ):
            self._begin(transparent=True)

    def _backoff_over(self) -> None:
        self._timer = None
        if self.phase is _BACKOFF:
            self._enter(_PICKING)
        if self._call._stream is None and self._pick_task is None:
            self._begin()

    # ------------------------------------------------------------------ retries (A6)

    def _retry(
        self, code: StatusCode, trailing: Metadata | None, per_attempt_timeout: bool
    ) -> bool:
        """Execute `decide_retry` for a failed attempt; True when a retry is scheduled."""
        call = self._call
        policy = self._policy
        assert policy is not None
        ctx = call._method.channel
        decision = decide_retry(
            policy,
            code,
            attempts=self.attempts,
            committed=self.phase is _COMMITTED,
            throttler=ctx.retry_throttler,
            pushback=_pushback(trailing),
            rand=random.random,
            retries_since_pushback=self._since_pushback,
            per_attempt_timeout=per_attempt_timeout,
        )
        path = call._method.path
        if not isinstance(decision, Retry):
            ctx.record_event(
                "retry",
                f"{path}: attempt {self.attempts} failed {code.name}; "
                f"no retry ({decision.reason.name.lower()})",
            )
            return False
        if decision.from_pushback:
            self._since_pushback = 0
        elif self._since_pushback is not None:
            self._since_pushback += 1
        ctx.record_event(
            "retry",
            f"{path}: attempt {self.attempts} failed {code.name}; "
            f"retrying in {decision.delay * 1000:.0f} ms",
        )
        self.attempts += 1
        call._stream = None
        self._enter(_BACKOFF)
        self._timer = call._loop.call_later(decision.delay, self._backoff_over)
        return True

    def _transparent_retry(self, stream: ClientStream) -> bool:
        """Execute `decide_transparent_retry` for an attempt the server never processed."""
        sent = stream.id != 0
        decision = decide_transparent_retry(
            sent=sent,
            refused=stream.refused,
            headers_received=stream.headers_received,
            replay_kept=self._call._unary_request or self._replay is not None,
            transparent_retries=self._transparent_retries,
            refused_retries=self._refused_retries,
        )
        if sent:
            self._transparent_retries += 1
            if stream.refused:
                self._refused_retries += 1
        return isinstance(decision, TransparentRetry)

    def _attempt_timed_out(self, stream: ClientStream) -> None:
        """perAttemptRecvTimeout (C-core): no response in time fails the attempt, which
        `decide_retry` and `decide_hedge` then treat as retryable (non-fatal)."""
        phase = self.phase
        timers = self._attempt_timers
        if phase is _COMMITTED or phase is _DONE or timers is None:
            return
        timers.pop(stream, None)
        call = self._call
        call._method.channel.record_event(
            "retry", f"{call._method.path}: attempt {self.attempts} got no response in time"
        )
        stream.per_attempt_timeout = True
        stream.cancel(StatusCode.CANCELLED, "per-attempt receive timeout")

    def _cancel_attempt_timer(self, stream: ClientStream) -> None:
        timers = self._attempt_timers
        timer = timers.pop(stream, None) if timers is not None else None
        if timer is not None:
            timer.cancel()

    def _commit(self, stream: ClientStream | None) -> None:
        """No more retries or hedges: ``stream`` is the call's attempt from now on, or, with
        None (no attempt in flight), the next one to start will be (A6 §When Retries are
        Valid, §Memory Management)."""
        hedging = self.phase is _HEDGING or self.phase is _HEDGING_STOPPED
        self._enter(_COMMITTED)
        if self._call._on_committed is not None:
            self._call._committed()
        if stream is not None:
            timer = self._timer
            if timer is not None:
                self._timer = None
                timer.cancel()
            if self._attempt_timers:
                self._cancel_attempt_timer(stream)
            if hedging:
                self._call._stream = stream
                hedges, self._hedges = self._hedges, []
                for other in hedges:
                    if other is not stream:
                        # The losers are reset with RST_STREAM(CANCEL) (A6 §Hedging Policy).
                        other.cancel(StatusCode.CANCELLED, "another hedged attempt won")
                        if self._attempt_timers:
                            self._cancel_attempt_timer(other)
            if not self._call._unary_request:
                self._replay = None
        if self._buffered:
            self._ctx.retry_buffer_used -= self._buffered
            self._buffered = 0

    def _buffer(self, nbytes: int) -> bool:
        """Count ``nbytes`` of request against the replay limits (the per-call and the
        channel's retry buffer, A6 §Memory Management); False when over."""
        ctx = self._ctx
        self._buffered += nbytes
        ctx.retry_buffer_used += nbytes
        opts = ctx.options
        return (
            self._buffered <= opts.per_rpc_retry_buffer_size
            and ctx.retry_buffer_used <= opts.retry_buffer_size
        )


# ---------------------------------------------------------------------- hedging (A6)
# The hedgingPolicy's moves of a runner (A6 §Hedging Policy), as functions of it: the runner
# calls them in its HEDGING and HEDGING_STOPPED phases.


def _schedule_hedge(runner: AttemptRunner, delay: float) -> None:
    """Arm the next hedged attempt's timer (at once for a delay of 0), if one may go."""
    timer = runner._timer
    if timer is not None:
        runner._timer = None
        timer.cancel()
    hedging = runner._hedging
    assert hedging is not None
    if runner.phase is not _HEDGING:
        return
    # Throttling aside (asked again when the timer fires): is a next attempt left?
    if not isinstance(decide_hedge(hedging, None, attempts=runner.attempts, throttler=None), Hedge):
        return
    if delay <= 0:
        _send_hedge(runner)
    else:
        runner._timer = runner._call._loop.call_later(delay, _send_hedge, runner)


def _send_hedge(runner: AttemptRunner) -> None:
    """The hedging delay passed: send the next hedged attempt, then time the one after."""
    runner._timer = None
    if runner.phase is not _HEDGING:
        return
    hedging = runner._hedging
    assert hedging is not None
    call = runner._call
    ctx = call._method.channel
    decision = decide_hedge(hedging, None, attempts=runner.attempts, throttler=ctx.retry_throttler)
    if not isinstance(decision, Hedge):
        return  # maxAttempts sent, or throttled: a throttled hedge is simply not sent
    if runner._pick_task is not None:
        # A pick is still waiting: this hedge goes when it lands.
        runner._timer = call._loop.call_later(hedging.hedging_delay or 0.001, _send_hedge, runner)
        return
    runner.attempts += 1
    ctx.record_event("hedge", f"{call._method.path}: sending hedged attempt {runner.attempts}")
    runner._begin()
    _schedule_hedge(runner, hedging.hedging_delay)


def _hedge_done(runner: AttemptRunner, stream: ClientStream) -> None:
    """An uncommitted hedged attempt ended: execute `decide_hedge` (A6 §Summary of Retry
    and Hedging Logic)."""
    if runner._dones:
        # Its pick is done with its status, whatever follows (when it is the call's last
        # attempt, that status is the call's).
        runner._done(stream, stream.code)
    hedges = runner._hedges
    if stream not in hedges:
        return
    assert isinstance(hedges, list)  # made with the hedgingPolicy
    hedges.remove(stream)
    if runner._attempt_timers:
        runner._cancel_attempt_timer(stream)
    if stream.unprocessed and runner._transparent_retry(stream):
        runner._queue_start()
        return
    hedging = runner._hedging
    assert hedging is not None
    code = stream.code
    assert code is not None
    call = runner._call
    ctx = call._method.channel
    decision = decide_hedge(
        hedging,
        code,
        attempts=runner.attempts,
        throttler=ctx.retry_throttler,
        pushback=_pushback(stream.trailing_metadata),
        per_attempt_timeout=stream.per_attempt_timeout,
        stopped=runner.phase is _HEDGING_STOPPED,
    )
    reason = None if isinstance(decision, Hedge) else decision.reason
    if reason is NoHedgeReason.OK:  # a Trailers-Only OK: this attempt wins
        runner._commit(stream)
        call._finish(code, stream.details, stream.trailing_metadata)
        return
    path = call._method.path
    if reason is NoHedgeReason.FATAL:
        ctx.record_event("hedge", f"{path}: hedged attempt failed {code.name} (fatal)")
    else:
        if isinstance(decision, Hedge):
            _schedule_hedge(runner, decision.delay)  # the next one goes now (or on pushback)
        else:
            if reason is NoHedgeReason.PUSHBACK_STOP or reason is NoHedgeReason.THROTTLED:
                runner._enter(_HEDGING_STOPPED)  # those in flight go on, no new ones
            timer = runner._timer
            if timer is not None:
                runner._timer = None
                timer.cancel()
        ctx.record_event("hedge", f"{path}: hedged attempt failed {code.name} (non-fatal)")
        if runner._hedges or runner._timer or runner._pick_task is not None or runner._queued:
            return  # attempts still in flight, being picked or scheduled
    # Finish first: the attempts still in flight are cancelled by it, and their own
    # completion then finds the call done.
    call._stream = stream
    call._finish(code, stream.details, stream.trailing_metadata)
