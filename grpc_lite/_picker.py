"""The channel's current picker and the RPCs waiting for the next one (L3).

grpc-go counterpart: ``pickerWrapper`` in picker_wrapper.go.

Pickers are immutable snapshots published by the balancer.  An RPC that cannot
be picked waits for the *next generation*: each generation has its own
``asyncio.Event``, set when the picker is replaced, so cancelling one waiting
RPC never disturbs the others (no shared Future; docs/architecture.md, "Concurrency model").

Pick semantics (grpc/grpc doc/wait-for-ready.md, gRFC A54, grpc-go pickerWrapper):
- ``NoSubchannelAvailable`` (IDLE, CONNECTING): wait for the next picker, fail-fast RPCs too.
- ``RpcError`` from the picker (TRANSIENT_FAILURE): fail-fast RPCs fail with it (restricted
  per A54); wait-for-ready RPCs keep waiting when it is UNAVAILABLE.
- any other exception: UNAVAILABLE for fail-fast RPCs.
- ``DroppedRpcError`` (a drop the policy decided: xDS ``drop_overloads``, a circuit breaker):
  the RPC fails at once, wait-for-ready or not, and is neither retried nor transparently
  retried (grpc-go: balancer.DropRPCError, whose pickerWrapper returns a dropError). Its code
  is restricted per A54 too. It is raised by `pick_now` as well as `wait_for_pick`, so a
  drop is decided by one pick, never re-picked on the slow path.
- a picked subchannel that is not READY (a race): wait for the next picker.
- a picked "subchannel" that is not one the channel made (a plugin's own object): INTERNAL,
  naming its type (grpc-go checks the same in pickerWrapper.pick, "subconn returned from
  pick is type %T, not *acBalancerWrapper", but logs it and waits for the next picker: a
  plugin's bug then hangs every RPC until its deadline; here the RPC fails at once).

A pick is handed to the call as `Picked`: the READY transport, the channel's own subchannel
(typed: the call counts its calls there) and the balancer's `PickResult` (its ``on_done``).

``PickResult.on_done`` runs exactly once for every pick that returned a result (grpc-go:
balancer.DoneInfo, called once per successful pick in picker_wrapper.go and stream.go's
csAttempt.finish), through `pick_done`: the call runs it with its attempt's final status
(`grpc_lite._call`, `grpc_lite._attempts`); a pick this module discards runs it here, before
picking again or failing the RPC:
- its subchannel is not READY any more: UNAVAILABLE. grpc-go's pickerWrapper calls Done with
  an empty DoneInfo there (no error: a success to a policy that counts them); grpc_lite
  reports UNAVAILABLE, what a stream started on a transport that went away ends with, so that
  a policy counting results (outlier detection, load reports) does not count a success for an
  RPC that never reached the backend.
- its subchannel is not one the channel made: INTERNAL, the RPC's status.
"""

import asyncio
import logging
from typing import TypeAlias

from ._subchannel import Subchannel
from ._transport import Http2Transport
from .balancer import DroppedRpcError, NoSubchannelAvailable, Picker, PickInfo, PickResult
from .status import RpcError, StatusCode, restrict_control_plane_code

_UNAVAILABLE = StatusCode.UNAVAILABLE
_INTERNAL = StatusCode.INTERNAL

log = logging.getLogger("grpc_lite")

Picked: TypeAlias = tuple[Http2Transport, Subchannel, PickResult]
"""What a call starts an attempt on (grpc-go: pickerWrapper.pick's transport and result)."""


def pick_done(result: PickResult, code: StatusCode) -> None:
    """Run ``result.on_done`` with ``code`` (the final status of the attempt it picked for):
    the caller runs it once per pick. A callback that raises is logged, never propagated."""
    on_done = result.on_done
    if on_done is not None:
        try:
            on_done(code)
        except Exception:
            log.exception("grpc_lite: pick on_done callback raised")


def foreign_subchannel(subchannel: object) -> RpcError:
    """The error of a pick whose subchannel the channel did not make."""
    kind = type(subchannel)
    return RpcError(
        StatusCode.INTERNAL,
        f"the picker returned a subchannel of type {kind.__module__}.{kind.__qualname__}, "
        "not one of the channel's (made by BalancerChannel.new_subchannel)",
    )


def dropped(exc: DroppedRpcError) -> DroppedRpcError:
    """A fresh `DroppedRpcError` for a call from the one a picker raised: its code restricted
    per A54, without the picker's traceback (`_forget_traceback`)."""
    _forget_traceback(exc)
    code, details = restrict_control_plane_code(exc.code(), exc.details() or "")
    return DroppedRpcError(code, details)


def _forget_traceback(exc: BaseException) -> None:
    """Drop the traceback of an exception a picker raised, once it is handled here.

    A picker may raise the same stored exception on every pick (``ErrorPicker`` does, and so
    may a balancer plugin's).  Each raise puts its traceback entries in front of the ones the
    exception already has, so the stored exception would keep a frame of every failed pick,
    and through those frames (CPython links a frame that outlives its call to its caller's)
    the calls that picked, for as long as the picker is referenced: a closed channel keeps its
    balancer's last state.  Failure path only.
    """
    exc.__traceback__ = None


class PickerHolder:
    """Holds the current picker; RPCs pick from it or wait for the next generation.

    Who may call: ``update`` from the channel's serializer; ``pick_now`` and
    ``wait_for_pick`` from any coroutine on the channel's loop.
    """

    __slots__ = ("_event", "generation", "picker")

    def __init__(self) -> None:
        self.picker: Picker | None = None
        self.generation = 0
        self._event = asyncio.Event()

    def update(self, picker: Picker) -> None:
        self.picker = picker
        self.generation += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    def wake_all(self) -> None:
        """Wake every waiter without a new picker (the channel closed or went idle)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    def pick_now(self, info: PickInfo) -> Picked | None:
        """Hot path: a READY pick from the current picker, or None (take the slow path).

        Raises `DroppedRpcError` when the picker dropped the RPC."""
        picker = self.picker
        if picker is None:
            return None
        try:
            result = picker.pick(info)
        except DroppedRpcError as exc:
            raise dropped(exc) from None
        except Exception as exc:
            _forget_traceback(exc)
            return None
        sc = result.subchannel
        if type(sc) is not Subchannel:
            if result.on_done is not None:
                pick_done(result, _INTERNAL)
            return None  # wait_for_pick fails the RPC, naming the type
        transport = sc.transport
        if transport is None or not transport.accepting_streams:
            if result.on_done is not None:
                pick_done(result, _UNAVAILABLE)  # discarded: see the module's docstring
            return None
        return transport, sc, result

    async def wait_for_pick(self, info: PickInfo, wait_for_ready: bool) -> Picked:
        """Pick, waiting across picker generations; raises RpcError for a failed pick
        (`DroppedRpcError` for a drop, even when waiting for ready)."""
        while True:
            event = self._event
            picker = self.picker
            if picker is not None:
                try:
                    result = picker.pick(info)
                except NoSubchannelAvailable as exc:
                    _forget_traceback(exc)
                except DroppedRpcError as exc:
                    raise dropped(exc) from None
                except RpcError as exc:
                    _forget_traceback(exc)
                    code = exc.code()
                    if not wait_for_ready or code is not StatusCode.UNAVAILABLE:
                        code, details = restrict_control_plane_code(code, exc.details() or "")
                        raise RpcError(code, details) from None
                except Exception as exc:
                    _forget_traceback(exc)
                    if not wait_for_ready:
                        raise RpcError(StatusCode.UNAVAILABLE, f"picker failed: {exc!r}") from None
                    log.debug("grpc_lite: picker raised %r; waiting for the next one", exc)
                else:
                    sc = result.subchannel
                    if type(sc) is not Subchannel:
                        pick_done(result, _INTERNAL)
                        raise foreign_subchannel(sc)
                    transport = sc.transport
                    if transport is not None and transport.accepting_streams:
                        return transport, sc, result
                    # Picked a subchannel that is no longer READY: re-pick with the next
                    # picker instead of failing (as grpc-go's pickerWrapper does); the
                    # discarded pick is done (see the module's docstring).
                    pick_done(result, _UNAVAILABLE)
            await event.wait()
