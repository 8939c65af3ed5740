"""Connection backoff (grpc/grpc doc/connection-backoff.md).

Pure arithmetic: `ExponentialBackoff` hands out delays and never sleeps. The owner (a
subchannel, the DNS resolver) schedules its own timer with the delay through its `Clock`.

The algorithm from connection-backoff.md::

    current_backoff = INITIAL_BACKOFF
    current_deadline = now() + INITIAL_BACKOFF
    while TryConnect(max(current_deadline, now() + MIN_CONNECT_TIMEOUT)) != SUCCESS:
        SleepUntil(current_deadline)
        current_backoff = min(current_backoff * MULTIPLIER, MAX_BACKOFF)
        current_deadline = now() + current_backoff
                           + UniformRandom(-JITTER * current_backoff, JITTER * current_backoff)

The first delay is INITIAL_BACKOFF without jitter, as the spec and grpc-go do (C-core
jitters it too; the interop check accepts both).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BackoffConfig", "ExponentialBackoff"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffConfig:
    """Connection backoff parameters; the defaults are connection-backoff.md's.

    Channel options: `grpc.initial_reconnect_backoff_ms`, `grpc.max_reconnect_backoff_ms`,
    `grpc.min_reconnect_backoff_ms` (C-core's name for MIN_CONNECT_TIMEOUT).
    """

    initial: float = 1.0
    multiplier: float = 1.6
    jitter: float = 0.2
    max: float = 120.0
    min_connect_timeout: float = 20.0

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise ValueError(f"backoff initial must be > 0, got {self.initial!r}")
        if not self.multiplier >= 1:
            raise ValueError(f"backoff multiplier must be >= 1, got {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be in [0, 1], got {self.jitter!r}")
        if not self.max >= self.initial:
            raise ValueError(f"backoff max ({self.max!r}) must be >= initial ({self.initial!r})")
        if not self.min_connect_timeout > 0:
            raise ValueError(f"min_connect_timeout must be > 0, got {self.min_connect_timeout!r}")


class ExponentialBackoff:
    """Successive backoff delays for one connection (or resolution) retry sequence.

    grpc-go counterpart: internal/backoff.Exponential, driven by addrConn's retry index.
    Not shared: each subchannel or resolver owns one. Sync; call from the owner only.

    Args:
        config: the parameters.
        rand: returns a float in [0, 1); injected so that tests pin the jitter.
    """

    __slots__ = ("_attempts", "_backoff", "_config", "_rand")

    def __init__(
        self, config: BackoffConfig | None = None, rand: Callable[[], float] = random.random
    ) -> None:
        # Immutable after __init__.
        self._config = config if config is not None else BackoffConfig()
        self._rand = rand
        # Mutated only by the owner.
        self._backoff = self._config.initial
        self._attempts = 0

    @property
    def config(self) -> BackoffConfig:
        return self._config

    @property
    def attempts(self) -> int:
        """How many delays were handed out since construction or the last `reset()`."""
        return self._attempts

    def reset(self) -> None:
        """Start again at INITIAL_BACKOFF (a connection was established, or a lookup worked)."""
        self._backoff = self._config.initial
        self._attempts = 0

    def next_delay(self) -> float:
        """The time from the start of this attempt to the start of the next one."""
        cfg = self._config
        self._attempts += 1
        if self._attempts == 1:
            # connection-backoff.md: the first deadline is exactly INITIAL_BACKOFF away.
            return self._backoff
        self._backoff = min(self._backoff * cfg.multiplier, cfg.max)
        # UniformRandom(-JITTER * backoff, JITTER * backoff).
        return self._backoff + cfg.jitter * self._backoff * (2.0 * self._rand() - 1.0)

    def connect_timeout(self, delay: float) -> float:
        """How long one attempt may take: max(current_deadline - now, MIN_CONNECT_TIMEOUT)."""
        return max(delay, self._config.min_connect_timeout)
