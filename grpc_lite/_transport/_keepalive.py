"""Client keepalive as a pure policy (A8; grpc-go: http2Client.keepalive).

Time is passed in; nothing here reads a clock or does I/O.  The transport calls
``on_read`` for every read and ``tick`` when the timer it was told to set fires:

- a PING is sent once nothing has been *read* for ``time`` seconds, measured
  from the last read, never from the last PING (A8 §Basic Keepalive);
- with no open streams nothing is sent unless ``permit_without_calls``;
- if nothing at all is read within ``timeout`` after a PING, the connection is
  closed and its calls fail UNAVAILABLE (A8; statuscodes.md).
"""

import enum
from dataclasses import dataclass

# A8: clients may not ask for keepalive more often than every 10 s.
MIN_KEEPALIVE_TIME = 10.0


@dataclass(slots=True, kw_only=True)
class KeepaliveParams:
    """Keepalive settings shared by a channel's connections.

    Mutable on purpose: a ``too_many_pings`` GOAWAY doubles ``time`` for every
    later connection of the channel (A8; grpc-go does the same).
    """

    time: float
    timeout: float = 20.0
    permit_without_calls: bool = False

    def __post_init__(self) -> None:
        self.time = max(self.time, MIN_KEEPALIVE_TIME)  # A8

    def too_many_pings(self) -> None:
        self.time *= 2


class Action(enum.Enum):
    NONE = "none"
    PING = "ping"
    CLOSE = "close"


class Keepalive:
    """Keepalive state of one connection.  Who may call: its transport only."""

    __slots__ = ("_permit", "_time", "_timeout", "last_read", "ping_sent_at")

    def __init__(self, params: KeepaliveParams, now: float) -> None:
        self._time = params.time
        self._timeout = params.timeout
        self._permit = params.permit_without_calls
        self.last_read = now
        self.ping_sent_at: float | None = None

    def on_read(self, now: float) -> None:
        self.last_read = now

    def tick(self, now: float, active_streams: int) -> tuple[Action, float]:
        """What to do now, and when to call ``tick`` next."""
        sent = self.ping_sent_at
        if sent is not None:
            if self.last_read > sent:
                self.ping_sent_at = None  # any read counts as the answer (A8)
            elif now >= sent + self._timeout:
                return Action.CLOSE, now
            else:
                return Action.NONE, sent + self._timeout
        due = self.last_read + self._time
        if now < due:
            return Action.NONE, due
        if active_streams == 0 and not self._permit:
            return Action.NONE, now + self._time
        self.ping_sent_at = now
        return Action.PING, now + self._timeout
