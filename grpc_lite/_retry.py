"""Retry, pushback and throttling decisions (L1; gRFC A6, CONFORMANCE L, N, O).

Pure: no I/O, no asyncio, no clock. Randomness is passed in as ``rand() -> [0, 1]``; the
call layer owns timers, attempt counting and the per-target `RetryThrottler`.

The decision for a finished attempt (`decide_retry`) follows A6 §Summary and C-core's
``ShouldRetry`` order:

1. retries disabled or no retryPolicy -> no retry, throttle untouched (104, 118);
2. OK -> no retry (the caller credits the throttler with `RetryThrottler.record_success`);
3. a status outside ``retryableStatusCodes`` without a "don't retry" pushback -> no retry,
   throttle untouched (106, 130);
4. otherwise one throttle failure is recorded (a retryable status, or a "don't retry"
   pushback whatever the status: A6 §Throttling, grpc-go), and then: committed -> no (109);
   "don't retry" pushback -> no (112); non-retryable -> no; ``attempts >= maxAttempts`` ->
   no (105, 107); throttled -> no (131);
5. else retry after the pushback delay exactly (112; the caller then restarts the backoff
   count) or after `retry_backoff` (108).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from grpc_lite.service_config import RetryPolicy, RetryThrottling, truncate_milli
from grpc_lite.status import StatusCode

__all__ = [
    "PUSHBACK_HEADER",
    "PUSHBACK_STOP",
    "NoRetry",
    "NoRetryReason",
    "Pushback",
    "PushbackResult",
    "Retry",
    "RetryDecision",
    "RetryThrottler",
    "decide_retry",
    "hedge_allowed",
    "parse_pushback",
    "retry_backoff",
]

PUSHBACK_HEADER = "grpc-retry-pushback-ms"

_INT32_MAX = 2**31 - 1
_PUSHBACK_RE = re.compile(r"[+-]?[0-9]+")


class RetryThrottler:
    """A6 retry throttling token bucket, one per channel target (130-134).

    Counts in integer milli-tokens (as C-core does) so that 0.1 steps never drift: 12
    successes at 0.1 from 4 give exactly 5.2. Sync; owned by the channel, shared by its calls
    on one event loop.

    grpc-go counterpart: ``retryThrottler``; C-core: ``RetryThrottleData``.
    """

    __slots__ = ("_max_milli", "_milli", "_ratio_milli")

    def __init__(self, max_tokens: float, token_ratio: float) -> None:
        self._max_milli = truncate_milli(max_tokens)
        self._ratio_milli = truncate_milli(token_ratio)
        if self._max_milli <= 0:
            raise ValueError(f"max_tokens must be > 0, got {max_tokens!r}")
        if self._ratio_milli <= 0:
            raise ValueError(f"token_ratio must be >= 0.001, got {token_ratio!r}")
        self._milli = self._max_milli

    @classmethod
    def from_config(cls, config: RetryThrottling) -> RetryThrottler:
        """A fresh full bucket for ``config`` (155: a new config replaces the bucket, as
        grpc-go does).
        """
        return cls(config.max_tokens, config.token_ratio)

    @property
    def max_tokens(self) -> float:
        return self._max_milli / 1000

    @property
    def token_ratio(self) -> float:
        return self._ratio_milli / 1000

    @property
    def tokens(self) -> float:
        """The current token count."""
        return self._milli / 1000

    @property
    def allows_retry(self) -> bool:
        """True while the count is strictly above maxTokens / 2 (131)."""
        return 2 * self._milli > self._max_milli

    def record_failure(self) -> bool:
        """Take one token (never below 0) for a retryable/non-fatal failure or a "don't
        retry" pushback; True when retries and hedges are still allowed **after** it (131).
        """
        self._milli = max(self._milli - 1000, 0)
        return self.allows_retry

    def record_success(self) -> None:
        """Add tokenRatio for an RPC that ended OK (never above maxTokens)."""
        self._milli = min(self._milli + self._ratio_milli, self._max_milli)

    def __repr__(self) -> str:
        return (
            f"RetryThrottler(tokens={self.tokens}, max={self.max_tokens}, ratio={self.token_ratio})"
        )


def retry_backoff(policy: RetryPolicy, retry_number: int, rand: Callable[[], float]) -> float:
    """Delay before retry ``retry_number`` (1-based, counted since the start of the call or
    the last pushback-driven retry): min(initial x multiplier^(n-1), max) x U(0.8, 1.2) (108).

    ``rand()`` in [0, 1] maps linearly onto [0.8, 1.2].
    """
    if retry_number < 1:
        raise ValueError(f"retry_number is 1-based, got {retry_number}")
    try:
        nominal = policy.initial_backoff * policy.backoff_multiplier ** (retry_number - 1)
    except OverflowError:
        nominal = policy.max_backoff
    nominal = min(nominal, policy.max_backoff)
    return nominal * (0.8 + 0.4 * rand())


class Pushback(enum.Enum):
    """The server said "don't retry" through ``grpc-retry-pushback-ms`` (112)."""

    STOP = "stop"


PUSHBACK_STOP = Pushback.STOP

PushbackResult: TypeAlias = int | Literal[Pushback.STOP] | None
"""`parse_pushback`'s result: milliseconds to wait, None (no header), or `PUSHBACK_STOP`."""


def parse_pushback(values: Sequence[str]) -> PushbackResult:
    """Read the ``grpc-retry-pushback-ms`` trailer values (112).

    No value -> None (use the policy's backoff). Exactly one valid integer >= 0 (a signed
    32-bit decimal) -> that many milliseconds, to be used exactly, with no jitter. A negative
    or unparseable value, or more than one value -> `PUSHBACK_STOP` ("don't retry").
    """
    if not values:
        return None
    if len(values) > 1:
        return PUSHBACK_STOP
    text = values[0]
    if not _PUSHBACK_RE.fullmatch(text):
        return PUSHBACK_STOP
    ms = int(text)
    if ms < 0 or ms > _INT32_MAX:
        return PUSHBACK_STOP
    return ms


class NoRetryReason(enum.Enum):
    DISABLED = "retries disabled by option"
    NO_POLICY = "no retry policy"
    OK = "status OK"
    PUSHBACK_STOP = "server pushback said not to retry"
    NOT_RETRYABLE = "status not in retryableStatusCodes"
    COMMITTED = "call committed"
    MAX_ATTEMPTS = "maxAttempts reached"
    THROTTLED = "retries throttled"


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry after ``delay`` seconds.

    ``from_pushback`` True means the delay came from server pushback: the caller must restart
    its backoff count (the next backoff-driven retry uses retry_number 1).
    """

    delay: float
    from_pushback: bool = False


@dataclass(frozen=True, slots=True)
class NoRetry:
    """Do not retry; the last attempt's status goes to the application (117)."""

    reason: NoRetryReason


RetryDecision: TypeAlias = Retry | NoRetry


def decide_retry(
    policy: RetryPolicy | None,
    code: StatusCode,
    *,
    attempts: int,
    committed: bool,
    throttler: RetryThrottler | None,
    pushback: PushbackResult,
    rand: Callable[[], float],
    retries_since_pushback: int | None = None,
    retries_enabled: bool = True,
) -> RetryDecision:
    """Whether (and when) to retry after an attempt finished with ``code``.

    Args:
        policy: the method's retryPolicy, or None.
        code: the attempt's status code.
        attempts: attempts made so far, counting the one that just failed (transparent
            retries excluded, 133).
        committed: the call is committed (response headers or a message arrived, or the
            retry buffer overflowed; 109, 110, 119).
        throttler: the channel's bucket, or None; mutated here (one failure at most).
        pushback: `parse_pushback` of the attempt's trailers.
        rand: ``() -> [0, 1]`` for the backoff jitter.
        retries_since_pushback: backoff-driven retries made since the call started or since
            the last pushback-driven retry; None means ``attempts - 1`` (no pushback so far).
        retries_enabled: False when a client option switched retries off (118).
    """
    if not retries_enabled:
        return NoRetry(NoRetryReason.DISABLED)
    if policy is None:
        return NoRetry(NoRetryReason.NO_POLICY)
    if code == StatusCode.OK:
        return NoRetry(NoRetryReason.OK)
    retryable = code in policy.retryable_status_codes
    stop = pushback is PUSHBACK_STOP
    if not retryable and not stop:
        return NoRetry(NoRetryReason.NOT_RETRYABLE)
    # A6 §Throttling: a retryable failure, or a "don't retry" pushback whatever the code,
    # takes one token.
    allowed = throttler.record_failure() if throttler is not None else True
    if committed:
        return NoRetry(NoRetryReason.COMMITTED)
    if stop:
        return NoRetry(NoRetryReason.PUSHBACK_STOP)
    if not retryable:
        return NoRetry(NoRetryReason.NOT_RETRYABLE)
    if attempts >= policy.max_attempts:
        return NoRetry(NoRetryReason.MAX_ATTEMPTS)
    if not allowed:
        return NoRetry(NoRetryReason.THROTTLED)
    if isinstance(pushback, int):
        return Retry(pushback / 1000, from_pushback=True)
    n = (attempts - 1 if retries_since_pushback is None else retries_since_pushback) + 1
    return Retry(retry_backoff(policy, max(n, 1), rand))


def hedge_allowed(throttler: RetryThrottler | None) -> bool:
    """Whether another hedged attempt may be sent now (131, 132): the first attempt is
    always sent; later ones only while the bucket is above half. Non-fatal failures of
    hedges are recorded by the caller with `RetryThrottler.record_failure`.
    """
    return throttler is None or throttler.allows_retry
