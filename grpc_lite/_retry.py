"""Retry, hedging, transparent-retry, pushback and throttling decisions (L1; gRFC A6).

Pure: no I/O, no asyncio, no clock. Randomness is passed in as ``rand() -> [0, 1]``; the
attempt runner (`grpc_lite._attempts`) owns timers and attempt counting and only executes
what these functions decide; the channel owns the per-target `RetryThrottler`, which the
decisions update in place (one failure at most per decision, A6 §Throttling Retry Attempts
and Hedged RPCs). Every "no" names its reason.

- `decide_retry`: an attempt of a call with a retryPolicy failed (or its pick failed): retry
  after a delay, or not. The order is A6 §Summary of Retry and Hedging Logic with C-core's
  ``ShouldRetry``:

  1. no retryPolicy -> no retry, throttle untouched;
  2. OK -> no retry (the channel credits the throttler with `RetryThrottler.record_success`);
  3. a status outside ``retryableStatusCodes`` (and no per-attempt receive timeout) without a
     "don't retry" pushback -> no retry, throttle untouched;
  4. otherwise one throttle failure is recorded (a retryable status, a per-attempt timeout,
     or a "don't retry" pushback whatever the status: A6 §Throttling, grpc-go), and then:
     committed -> no (A6 §When Retries are Valid); "don't retry" pushback -> no (A6
     §Pushback); non-retryable -> no; ``attempts >= maxAttempts`` -> no; throttled -> no;
  5. else retry after the pushback delay exactly (A6 §Pushback; the caller then restarts the
     backoff count) or after `retry_backoff` (A6 §Exponential Backoff).

- `decide_hedge`: a call with a hedgingPolicy wants to send its next hedged attempt (the
  hedging delay passed), or one of its hedged attempts failed: send the next one after a
  delay, or not (A6 §Hedging Policy, §Pushback, §Throttling).

- `decide_transparent_retry`: an attempt ended without the server application seeing it
  (REFUSED_STREAM, a GOAWAY above its stream id, never sent): start it again at once, not
  counted against maxAttempts and never throttled (A6 §Transparent Retries; grpc-go
  ``csAttempt.shouldRetry``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from grpc_lite.service_config import HedgingPolicy, RetryPolicy, RetryThrottling, truncate_milli
from grpc_lite.status import StatusCode

__all__ = [
    "MAX_REFUSED_RETRIES",
    "MAX_TRANSPARENT_RETRIES",
    "PUSHBACK_HEADER",
    "PUSHBACK_STOP",
    "Hedge",
    "HedgeDecision",
    "NoHedge",
    "NoHedgeReason",
    "NoRetry",
    "NoRetryReason",
    "NoTransparentRetry",
    "NoTransparentRetryReason",
    "Pushback",
    "PushbackResult",
    "Retry",
    "RetryDecision",
    "RetryThrottler",
    "TransparentRetry",
    "TransparentRetryDecision",
    "decide_hedge",
    "decide_retry",
    "decide_transparent_retry",
    "parse_pushback",
    "retry_backoff",
]

PUSHBACK_HEADER = "grpc-retry-pushback-ms"

_INT32_MAX = 2**31 - 1
_PUSHBACK_RE = re.compile(r"[+-]?[0-9]+")


class RetryThrottler:
    """The retry throttling token bucket (A6 §Throttling), one per channel target.

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
        """A fresh full bucket for ``config`` (a new config replaces the bucket, as
        grpc-go's clientconn does; C-core scales the current tokens instead).
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
        """True while the count is strictly above maxTokens / 2 (A6 §Throttling)."""
        return 2 * self._milli > self._max_milli

    def record_failure(self) -> bool:
        """Take one token (never below 0) for a retryable/non-fatal failure or a "don't
        retry" pushback; True when retries and hedges are still allowed **after** it (A6).
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
    the last pushback-driven retry): min(initial x multiplier^(n-1), max) x U(0.8, 1.2) (A6
    §Exponential Backoff).

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
    """The server said "don't retry" through ``grpc-retry-pushback-ms`` (A6 §Pushback)."""

    STOP = "stop"


PUSHBACK_STOP = Pushback.STOP

PushbackResult: TypeAlias = int | Literal[Pushback.STOP] | None
"""`parse_pushback`'s result: milliseconds to wait, None (no header), or `PUSHBACK_STOP`."""


def parse_pushback(values: Sequence[str]) -> PushbackResult:
    """Read the ``grpc-retry-pushback-ms`` trailer values (A6 §Pushback).

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
    """Do not retry; the last attempt's status goes to the application."""

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
    per_attempt_timeout: bool = False,
) -> RetryDecision:
    """Whether (and when) to retry after an attempt finished with ``code``.

    Args:
        policy: the method's retryPolicy, or None.
        code: the attempt's status code (for a failed pick, the pick's).
        attempts: attempts made so far, counting the one that just failed (transparent
            retries excluded, A6 §Transparent Retries).
        committed: the call is committed (response headers arrived, or the request outgrew
            the replay buffer; A6 §When Retries are Valid).
        throttler: the channel's bucket, or None; mutated here (one failure at most).
        pushback: `parse_pushback` of the attempt's trailers.
        rand: ``() -> [0, 1]`` for the backoff jitter.
        retries_since_pushback: backoff-driven retries made since the call started or since
            the last pushback-driven retry; None means ``attempts - 1`` (no pushback so far).
        per_attempt_timeout: the attempt was cancelled because no response came within the
            policy's perAttemptRecvTimeout; it counts as retryable whatever ``code`` is
            (C-core's ``ShouldRetry`` is asked without a status then).
    """
    if policy is None:
        return NoRetry(NoRetryReason.NO_POLICY)
    if code == StatusCode.OK:
        return NoRetry(NoRetryReason.OK)
    retryable = per_attempt_timeout or code in policy.retryable_status_codes
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


class NoHedgeReason(enum.Enum):
    OK = "status OK: this attempt wins"
    FATAL = "status not in nonFatalStatusCodes"
    STOPPED = "no more hedged attempts for this call"
    PUSHBACK_STOP = "server pushback said not to hedge"
    MAX_ATTEMPTS = "maxAttempts reached"
    THROTTLED = "hedging throttled"


@dataclass(frozen=True, slots=True)
class Hedge:
    """Send the next hedged attempt after ``delay`` seconds (0: now).

    ``from_pushback`` True means the server's pushback chose the delay (A6 §Pushback).
    """

    delay: float
    from_pushback: bool = False


@dataclass(frozen=True, slots=True)
class NoHedge:
    """Send no further hedged attempt now.

    OK and FATAL end the call with this attempt's status (the others are cancelled).
    PUSHBACK_STOP and THROTTLED after a failure stop hedging for the rest of the call (the
    attempts in flight go on; the call fails with the last failure once none is left).
    MAX_ATTEMPTS, STOPPED, and THROTTLED when no attempt failed, only mean "not now".
    """

    reason: NoHedgeReason


HedgeDecision: TypeAlias = Hedge | NoHedge


def decide_hedge(
    policy: HedgingPolicy,
    code: StatusCode | None,
    *,
    attempts: int,
    throttler: RetryThrottler | None,
    pushback: PushbackResult = None,
    per_attempt_timeout: bool = False,
    stopped: bool = False,
) -> HedgeDecision:
    """Whether (and when) to send the next hedged attempt (A6 §Hedging Policy).

    ``code`` None asks whether the next hedged attempt may go now that the hedging delay has
    passed: not once ``maxAttempts`` attempts were sent, nor while the throttler is at or
    below half (A6 §Throttling: "subsequent hedged RPCs will only be sent if token_count is
    greater than the threshold"); the throttler is not touched. The first attempt of a call
    is always sent and never asks.

    A ``code`` is the status of a hedged attempt that just ended (A6 §Summary of Retry and
    Hedging Logic):

    - OK -> NoHedge(OK): it wins; a fatal status -> NoHedge(FATAL): the call fails with it;
      the throttler is not touched.
    - a non-fatal status, or a per-attempt receive timeout, takes one throttle token; then
      ``stopped`` (hedging stopped earlier) -> STOPPED; a "don't retry" pushback ->
      PUSHBACK_STOP and a throttled bucket -> THROTTLED (no more hedges for this call);
      ``attempts >= maxAttempts`` -> MAX_ATTEMPTS; a pushback of n ms -> Hedge(n / 1000);
      else Hedge(0): the next hedged attempt goes at once, short-cutting its delay.

    Args:
        policy: the method's hedgingPolicy.
        code: the ended attempt's status, or None (see above).
        attempts: attempts sent so far, the first one included (transparent retries
            excluded).
        throttler: the channel's bucket, or None; mutated here (one failure at most).
        pushback: `parse_pushback` of the ended attempt's trailers.
        per_attempt_timeout: the attempt was cancelled by perAttemptRecvTimeout: non-fatal.
        stopped: this call already stopped hedging (an earlier PUSHBACK_STOP or THROTTLED).
    """
    if code is None:
        if attempts >= policy.max_attempts:
            return NoHedge(NoHedgeReason.MAX_ATTEMPTS)
        if throttler is not None and not throttler.allows_retry:
            return NoHedge(NoHedgeReason.THROTTLED)
        return Hedge(0.0)
    if code == StatusCode.OK:
        return NoHedge(NoHedgeReason.OK)
    if not per_attempt_timeout and code not in policy.non_fatal_status_codes:
        return NoHedge(NoHedgeReason.FATAL)
    allowed = throttler.record_failure() if throttler is not None else True
    if stopped:
        return NoHedge(NoHedgeReason.STOPPED)
    if pushback is PUSHBACK_STOP:
        return NoHedge(NoHedgeReason.PUSHBACK_STOP)
    if not allowed:
        return NoHedge(NoHedgeReason.THROTTLED)
    if attempts >= policy.max_attempts:
        return NoHedge(NoHedgeReason.MAX_ATTEMPTS)
    if isinstance(pushback, int):
        return Hedge(pushback / 1000, from_pushback=True)
    return Hedge(0.0)


MAX_REFUSED_RETRIES = 1
"""A stream the server refused (REFUSED_STREAM before any response headers) is retried once:
A6 §Transparent Retries ("the client library will immediately retry it once")."""

MAX_TRANSPARENT_RETRIES = 5
"""Transparent retries of streams that reached the server, per call (refused ones, and those
above a GOAWAY's last stream id). Streams that never left the client are not counted."""


class NoTransparentRetryReason(enum.Enum):
    HEADERS_RECEIVED = "response headers arrived: the server saw the call"
    NO_REPLAY = "the request stream is no longer buffered"
    LIMIT = "transparent retry limit reached"
    REFUSED_LIMIT = "a refused stream was retried already"


@dataclass(frozen=True, slots=True)
class TransparentRetry:
    """Start the attempt again at once, on a new pick; it does not count against
    maxAttempts and takes no throttle token (A6 §Transparent Retries)."""


@dataclass(frozen=True, slots=True)
class NoTransparentRetry:
    """The attempt's failure stands (a retry policy may still retry it)."""

    reason: NoTransparentRetryReason


TransparentRetryDecision: TypeAlias = TransparentRetry | NoTransparentRetry


def decide_transparent_retry(
    *,
    sent: bool,
    refused: bool,
    headers_received: bool,
    replay_kept: bool,
    transparent_retries: int,
    refused_retries: int,
) -> TransparentRetryDecision:
    """Whether an attempt the server application never saw is started again at once.

    The caller asks only for such attempts (``ClientStream.unprocessed``) and counts them
    afterwards: ``transparent_retries`` for every one that was ``sent``, ``refused_retries``
    for every ``refused`` one.

    Args:
        sent: the stream left the client (it had a stream id). One that never did is
            retried whatever the counts, until the call's deadline (A6: "the client library
            can transparently retry until a success occurs, or the RPC's deadline passes";
            grpc-go ``csAttempt.shouldRetry``: no stream and ``allowTransparentRetry``).
        refused: the server reset it with REFUSED_STREAM before any response headers.
        headers_received: response headers arrived on it (then the server did see it).
        replay_kept: every request message written so far is still held for a replay (always
            true for a unary request).
        transparent_retries: sent streams of this call already asked about.
        refused_retries: refused streams of this call already asked about.
    """
    if headers_received:
        return NoTransparentRetry(NoTransparentRetryReason.HEADERS_RECEIVED)
    if not replay_kept:
        return NoTransparentRetry(NoTransparentRetryReason.NO_REPLAY)
    if not sent:
        return TransparentRetry()
    if transparent_retries >= MAX_TRANSPARENT_RETRIES:
        return NoTransparentRetry(NoTransparentRetryReason.LIMIT)
    if refused and refused_retries >= MAX_REFUSED_RETRIES:
        return NoTransparentRetry(NoTransparentRetryReason.REFUSED_LIMIT)
    return TransparentRetry()
