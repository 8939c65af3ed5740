"""Retry, hedging and transparent-retry decisions, backoff, pushback and throttling
(gRFC A6; CONFORMANCE items 104-134 as labels). Every decision function has its table here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from grpc_lite._retry import (
    MAX_REFUSED_RETRIES,
    MAX_TRANSPARENT_RETRIES,
    PUSHBACK_STOP,
    Hedge,
    HedgeDecision,
    NoHedge,
    NoHedgeReason,
    NoRetry,
    NoRetryReason,
    NoTransparentRetry,
    NoTransparentRetryReason,
    PushbackResult,
    Retry,
    RetryDecision,
    RetryThrottler,
    TransparentRetry,
    TransparentRetryDecision,
    decide_hedge,
    decide_retry,
    decide_transparent_retry,
    parse_pushback,
    retry_backoff,
)
from grpc_lite.service_config import (
    HedgingPolicy,
    RetryPolicy,
    RetryThrottling,
    parse_service_config,
)
from grpc_lite.status import StatusCode

U = StatusCode.UNAVAILABLE


def _policy(
    max_attempts: int = 5,
    initial: float = 0.2,
    maximum: float = 0.5,
    multiplier: float = 2.0,
    codes: frozenset[StatusCode] = frozenset({U}),
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts,
        initial_backoff=initial,
        max_backoff=maximum,
        backoff_multiplier=multiplier,
        retryable_status_codes=codes,
    )


def _mid() -> float:
    return 0.5  # no jitter: U(0.8, 1.2) at its midpoint


def _decide(
    policy: RetryPolicy | None = None,
    code: StatusCode = U,
    *,
    attempts: int = 1,
    committed: bool = False,
    throttler: RetryThrottler | None = None,
    pushback: PushbackResult = None,
    rand: Callable[[], float] = _mid,
    retries_since_pushback: int | None = None,
    per_attempt_timeout: bool = False,
) -> RetryDecision:
    return decide_retry(
        policy,
        code,
        attempts=attempts,
        committed=committed,
        throttler=throttler,
        pushback=pushback,
        rand=rand,
        retries_since_pushback=retries_since_pushback,
        per_attempt_timeout=per_attempt_timeout,
    )


# ---------------------------------------------------------------------------------------
# 108: backoff
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "nominal"),
    [(1, 0.2), (2, 0.4), (3, 0.5), (4, 0.5), (50, 0.5), (5000, 0.5)],
)
def test_backoff_nominal(n: int, nominal: float) -> None:
    """108: min(initial x multiplier^(n-1), max); item 108's 0.2 s / x2 / 0.5 s example."""
    assert retry_backoff(_policy(), n, _mid) == pytest.approx(nominal)


@pytest.mark.parametrize(("r", "factor"), [(0.0, 0.8), (0.5, 1.0), (1.0, 1.2)])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_backoff_jitter_bounds(r: float, factor: float, n: int) -> None:
    """108: x U(0.8, 1.2), not U(0, x): rand 0 -> 0.8x, rand 1 -> 1.2x."""
    nominal = [0.2, 0.4, 0.5][n - 1]
    assert retry_backoff(_policy(), n, lambda: r) == pytest.approx(nominal * factor)


def test_backoff_gap_windows_of_item_108() -> None:
    """108: gaps in [0.16, 0.24], [0.32, 0.48], [0.40, 0.60] s."""
    for n, (lo, hi) in enumerate([(0.16, 0.24), (0.32, 0.48), (0.40, 0.60)], start=1):
        assert retry_backoff(_policy(), n, lambda: 0.0) == pytest.approx(lo)
        assert retry_backoff(_policy(), n, lambda: 1.0) == pytest.approx(hi)


def test_backoff_multiplier_below_one() -> None:
    p = _policy(initial=1.0, maximum=5.0, multiplier=0.5)
    assert [retry_backoff(p, n, _mid) for n in (1, 2, 3)] == pytest.approx([1.0, 0.5, 0.25])


def test_backoff_rejects_zero() -> None:
    with pytest.raises(ValueError):
        retry_backoff(_policy(), 0, _mid)


# ---------------------------------------------------------------------------------------
# 112: pushback parsing
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        (["0"], 0),
        (["500"], 500),
        (["2147483647"], 2147483647),
        (["-1"], PUSHBACK_STOP),
        (["abc"], PUSHBACK_STOP),
        ([""], PUSHBACK_STOP),
        (["1.5"], PUSHBACK_STOP),
        (["1e3"], PUSHBACK_STOP),
        ([" 5"], PUSHBACK_STOP),
        (["1_000"], PUSHBACK_STOP),
        (["\u0661"], PUSHBACK_STOP),  # non-ASCII digit
        (["2147483648"], PUSHBACK_STOP),  # not a signed 32-bit integer
        (["100", "200"], PUSHBACK_STOP),  # more than one value
        (["100", "100"], PUSHBACK_STOP),
    ],
)
def test_parse_pushback(values: list[str], expected: PushbackResult) -> None:
    """112: none -> backoff; one integer >= 0 -> ms; negative/garbage/several -> stop."""
    assert parse_pushback(values) == expected


# ---------------------------------------------------------------------------------------
# decide_retry: the rules, in order
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # 104: no policy, no configured retries (118, grpc.enable_retries=0, means no policy
        # reaches the call: tests/e2e/resilience/test_retry_policy.py).
        ({"policy": None}, NoRetry(NoRetryReason.NO_POLICY)),
        ({"code": StatusCode.OK}, NoRetry(NoRetryReason.OK)),
        # 106: a status outside the list is returned at once.
        ({"code": StatusCode.INVALID_ARGUMENT}, NoRetry(NoRetryReason.NOT_RETRYABLE)),
        # 109: committed (non-Trailers-Only headers, or a message) -> no retry.
        ({"committed": True}, NoRetry(NoRetryReason.COMMITTED)),
        # 112: "don't retry" pushback.
        ({"pushback": PUSHBACK_STOP}, NoRetry(NoRetryReason.PUSHBACK_STOP)),
        # 105: attempts < maxAttempts required.
        ({"attempts": 5}, NoRetry(NoRetryReason.MAX_ATTEMPTS)),
        ({"attempts": 6}, NoRetry(NoRetryReason.MAX_ATTEMPTS)),
        # 112: pushback with maxAttempts exhausted -> no retry at all.
        ({"attempts": 5, "pushback": 100}, NoRetry(NoRetryReason.MAX_ATTEMPTS)),
        # 105/108: retry after backoff n = attempts.
        ({"attempts": 1}, Retry(0.2)),
        ({"attempts": 2}, Retry(0.4)),
        ({"attempts": 4}, Retry(0.5)),
        # 112: pushback -> exactly that delay, no jitter; caller restarts the backoff.
        ({"pushback": 500, "rand": lambda: 1.0}, Retry(0.5, from_pushback=True)),
        ({"pushback": 0}, Retry(0.0, from_pushback=True)),
        # 112: after a pushback retry, backoff restarts at initialBackoff.
        ({"attempts": 3, "retries_since_pushback": 0}, Retry(0.2)),
        ({"attempts": 4, "retries_since_pushback": 1}, Retry(0.4)),
        # perAttemptRecvTimeout: the cancelled attempt counts as retryable whatever its code.
        ({"code": StatusCode.CANCELLED, "per_attempt_timeout": True}, Retry(0.2)),
        ({"code": StatusCode.INTERNAL, "per_attempt_timeout": True}, Retry(0.2)),
        (
            {"code": StatusCode.CANCELLED, "per_attempt_timeout": True, "attempts": 5},
            NoRetry(NoRetryReason.MAX_ATTEMPTS),
        ),
        (
            {"code": StatusCode.CANCELLED, "per_attempt_timeout": True, "committed": True},
            NoRetry(NoRetryReason.COMMITTED),
        ),
        ({"code": StatusCode.CANCELLED}, NoRetry(NoRetryReason.NOT_RETRYABLE)),
        ({"code": StatusCode.OK, "per_attempt_timeout": True}, NoRetry(NoRetryReason.OK)),
    ],
)
def test_decide_retry_table(kwargs: dict[str, object], expected: RetryDecision) -> None:
    """Items 104-106, 108, 109, 112 and the per-attempt timeout, without a throttler."""
    params: dict[str, object] = {"policy": _policy()} | kwargs
    got = _decide(**params)  # type: ignore[arg-type]
    if isinstance(expected, Retry):
        assert isinstance(got, Retry)
        assert got.delay == pytest.approx(expected.delay)
        assert got.from_pushback is expected.from_pushback
    else:
        assert got == expected


def test_item_105_attempt_sequences() -> None:
    """105: a handler failing UNAVAILABLE twice: maxAttempts 3 -> a 3rd attempt happens;
    maxAttempts 2 -> the 2nd failure is final.
    """
    p3, p2 = _policy(max_attempts=3), _policy(max_attempts=2)
    assert isinstance(_decide(p3, attempts=1), Retry)
    assert isinstance(_decide(p3, attempts=2), Retry)
    assert isinstance(_decide(p2, attempts=1), Retry)
    assert _decide(p2, attempts=2) == NoRetry(NoRetryReason.MAX_ATTEMPTS)


def test_item_107_clamped_policy_gives_five_attempts() -> None:
    """107: maxAttempts 10 in the config -> exactly 5 attempts against an always-failing server."""
    sc = parse_service_config(
        {
            "methodConfig": [
                {
                    "name": [{}],
                    "retryPolicy": {
                        "maxAttempts": 10,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )
    mc = sc.method_config("/s/m")
    assert mc is not None
    attempts = 1
    while isinstance(_decide(mc.retry_policy, attempts=attempts), Retry):
        attempts += 1
    assert attempts == 5


# ---------------------------------------------------------------------------------------
# Throttle accounting inside decide_retry (130, 131, 132)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "tokens_after"),
    [
        ({"policy": None}, 10.0),
        ({"code": StatusCode.OK}, 10.0),
        ({"code": StatusCode.INVALID_ARGUMENT}, 10.0),  # 130: non-retryable codes are free
        ({}, 9.0),  # retryable failure takes 1
        ({"committed": True}, 9.0),  # still a retryable failure
        ({"attempts": 5}, 9.0),  # maxAttempts reached: still counted
        ({"pushback": PUSHBACK_STOP}, 9.0),  # 112: "don't retry" counts as a failure
        # A6 §Throttling: a "don't retry" pushback counts whatever the status code.
        ({"pushback": PUSHBACK_STOP, "code": StatusCode.INTERNAL}, 9.0),
        ({"pushback": 100}, 9.0),
        ({"code": StatusCode.CANCELLED}, 10.0),
        ({"code": StatusCode.CANCELLED, "per_attempt_timeout": True}, 9.0),
    ],
)
def test_decide_retry_throttle_accounting(kwargs: dict[str, object], tokens_after: float) -> None:
    """130: retryable failures and "don't retry" pushbacks take 1 token; nothing else does."""
    t = RetryThrottler(10, 0.1)
    params: dict[str, object] = {"policy": _policy(), "throttler": t} | kwargs
    _decide(**params)  # type: ignore[arg-type]
    assert t.tokens == tokens_after


def test_throttled_is_immediate_no_retry() -> None:
    """131/132: once at or below half, a retryable failure is returned at once."""
    t = RetryThrottler(2, 0.1)
    assert _decide(_policy(), throttler=t) == NoRetry(NoRetryReason.THROTTLED)  # 1 <= 1
    assert t.tokens == 1.0


def test_committed_wins_over_throttled_reason() -> None:
    t = RetryThrottler(2, 0.1)
    assert _decide(_policy(), throttler=t, committed=True) == NoRetry(NoRetryReason.COMMITTED)


def _run_failing_call(t: RetryThrottler, policy: RetryPolicy) -> int:
    """Attempts made by a call whose every attempt fails UNAVAILABLE."""
    attempts = 1
    while isinstance(_decide(policy, attempts=attempts, throttler=t), Retry):
        attempts += 1
    return attempts


def test_item_131_arithmetic_sequence() -> None:
    """131: maxTokens 10, tokenRatio 0.1, maxAttempts 5, always UNAVAILABLE, exact arithmetic."""
    policy = _policy(max_attempts=5)
    t = RetryThrottler(10, 0.1)

    # Call 1: failures leave 9, 8, 7, 6 (retried); the 5th leaves 5 and maxAttempts is hit.
    seen = []
    attempts = 1
    while True:
        decision = _decide(policy, attempts=attempts, throttler=t)
        seen.append(t.tokens)
        if not isinstance(decision, Retry):
            assert decision == NoRetry(NoRetryReason.MAX_ATTEMPTS)
            break
        attempts += 1
    assert attempts == 5
    assert seen == [9.0, 8.0, 7.0, 6.0, 5.0]

    # Call 2: the first failure leaves 4 <= 5 -> 1 attempt.
    assert _run_failing_call(t, policy) == 1
    assert t.tokens == 4.0

    # 12 OK calls bring it to 5.2 exactly; the next failing call drops to 4.2 -> 1 attempt.
    for _ in range(12):
        t.record_success()
    assert t.tokens == 5.2
    assert _run_failing_call(t, policy) == 1
    assert t.tokens == 4.2


def test_item_131_recovery_from_four() -> None:
    """131: after 21 OK calls from 4 (6.1), a failing call drops to 5.1 > 5 -> retried."""
    policy = _policy(max_attempts=5)
    t = RetryThrottler(10, 0.1)
    for _ in range(6):
        t.record_failure()
    assert t.tokens == 4.0
    for _ in range(21):
        t.record_success()
    assert t.tokens == 6.1
    first = _decide(policy, attempts=1, throttler=t)
    assert isinstance(first, Retry)
    assert t.tokens == 5.1
    # The retried attempt fails too: 4.1 <= 5 -> throttled. 2 attempts in all.
    assert _decide(policy, attempts=2, throttler=t) == NoRetry(NoRetryReason.THROTTLED)
    assert t.tokens == pytest.approx(4.1)


# ---------------------------------------------------------------------------------------
# RetryThrottler (130, 131, 134)
# ---------------------------------------------------------------------------------------


def test_throttler_threshold_is_strict_and_after_deduction() -> None:
    """131: allowed only while tokens > max/2, tested after taking off the failure."""
    t = RetryThrottler(4, 1)
    assert t.allows_retry
    assert t.record_failure() is True  # 3 > 2
    assert t.record_failure() is False  # 2 is not > 2
    assert not t.allows_retry
    t.record_success()
    assert t.tokens == 3.0 and t.allows_retry


def test_throttler_bounds() -> None:
    """130: never below 0, never above maxTokens."""
    t = RetryThrottler(2, 0.5)
    for _ in range(5):
        t.record_failure()
    assert t.tokens == 0.0
    for _ in range(10):
        t.record_success()
    assert t.tokens == 2.0


def test_throttler_no_drift_over_many_steps() -> None:
    """131: milli-token integers: 0.1 steps stay exact."""
    t = RetryThrottler(1000, 0.1)
    for _ in range(1000):
        t.record_failure()
    assert t.tokens == 0.0
    for _ in range(3333):
        t.record_success()
    assert t.tokens == 333.3


@pytest.mark.parametrize(("ratio", "kept"), [(0.5466, 0.546), (0.1, 0.1), (4.35, 4.35)])
def test_throttler_token_ratio_precision(ratio: float, kept: float) -> None:
    """134: only 3 decimal places count (0.5466 -> 0.546)."""
    t = RetryThrottler(1000, ratio)
    assert t.token_ratio == kept
    t.record_failure()
    t.record_success()
    assert t.tokens == round(999 + kept, 3) if kept < 1 else 1000.0


def test_throttler_from_config() -> None:
    """134 + 155: built from the parsed config, starting full (grpc-go's choice)."""
    sc = parse_service_config('{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.5466}}')
    assert sc.retry_throttling == RetryThrottling(max_tokens=10.0, token_ratio=0.546)
    t = RetryThrottler.from_config(sc.retry_throttling)
    assert (t.tokens, t.max_tokens, t.token_ratio) == (10.0, 10.0, 0.546)


@pytest.mark.parametrize(("max_tokens", "ratio"), [(0, 0.1), (10, 0), (10, 0.0004), (-1, 1)])
def test_throttler_rejects_bad_parameters(max_tokens: float, ratio: float) -> None:
    with pytest.raises(ValueError):
        RetryThrottler(max_tokens, ratio)


# ---------------------------------------------------------------------------------------
# decide_hedge (124-132): the next hedged attempt
# ---------------------------------------------------------------------------------------

FATAL = StatusCode.INVALID_ARGUMENT


def _hedging(max_attempts: int = 3) -> HedgingPolicy:
    return HedgingPolicy(
        max_attempts=max_attempts, hedging_delay=0.5, non_fatal_status_codes=frozenset({U})
    )


def _bucket(tokens: float) -> RetryThrottler:
    """A maxTokens 10, tokenRatio 0.1 bucket holding ``tokens``."""
    t = RetryThrottler(10, 0.1)
    for _ in range(10 - int(tokens)):
        t.record_failure()
    for _ in range(round((tokens - int(tokens)) * 10)):
        t.record_success()
    assert t.tokens == tokens
    return t


@pytest.mark.parametrize(
    ("kwargs", "expected", "tokens_after"),
    [
        # The hedging delay passed (code None): send while attempts and tokens allow (124).
        ({"code": None, "attempts": 1}, Hedge(0.0), 10.0),
        ({"code": None, "attempts": 2}, Hedge(0.0), 10.0),
        ({"code": None, "attempts": 3}, NoHedge(NoHedgeReason.MAX_ATTEMPTS), 10.0),
        # 132: a throttled hedge is not sent; asking takes no token.
        ({"code": None, "tokens": 5.0}, NoHedge(NoHedgeReason.THROTTLED), 5.0),
        ({"code": None, "tokens": 5.5}, Hedge(0.0), 5.5),
        # An attempt ended OK: it wins; no token moves here (the channel credits success).
        ({"code": StatusCode.OK}, NoHedge(NoHedgeReason.OK), 10.0),
        # 125: a fatal status ends the call; not a throttle failure (130).
        ({"code": FATAL}, NoHedge(NoHedgeReason.FATAL), 10.0),
        ({"code": FATAL, "pushback": PUSHBACK_STOP}, NoHedge(NoHedgeReason.FATAL), 10.0),
        # 126: a non-fatal status sends the next hedged attempt at once.
        ({"code": U}, Hedge(0.0), 9.0),
        # perAttemptRecvTimeout: non-fatal whatever the code.
        ({"code": StatusCode.CANCELLED, "per_attempt_timeout": True}, Hedge(0.0), 9.0),
        ({"code": StatusCode.CANCELLED}, NoHedge(NoHedgeReason.FATAL), 10.0),
        # 127: pushback n ms -> the next one after n ms, exactly.
        ({"code": U, "pushback": 250}, Hedge(0.25, from_pushback=True), 9.0),
        # 128: "don't retry" pushback stops hedging for the call (still a throttle failure).
        ({"code": U, "pushback": PUSHBACK_STOP}, NoHedge(NoHedgeReason.PUSHBACK_STOP), 9.0),
        # 131/132: the failure takes the bucket to the threshold: no more hedges.
        ({"code": U, "tokens": 6.0}, NoHedge(NoHedgeReason.THROTTLED), 5.0),
        ({"code": U, "tokens": 6.5}, Hedge(0.0), 5.5),
        # maxAttempts already sent: nothing more to send, but the failure counts.
        ({"code": U, "attempts": 3}, NoHedge(NoHedgeReason.MAX_ATTEMPTS), 9.0),
        ({"code": U, "attempts": 3, "pushback": 100}, NoHedge(NoHedgeReason.MAX_ATTEMPTS), 9.0),
        # Hedging stopped earlier: STOPPED wins over every later reason; still counted.
        ({"code": U, "stopped": True}, NoHedge(NoHedgeReason.STOPPED), 9.0),
        (
            {"code": U, "stopped": True, "pushback": PUSHBACK_STOP},
            NoHedge(NoHedgeReason.STOPPED),
            9.0,
        ),
        ({"code": U, "stopped": True, "tokens": 6.0}, NoHedge(NoHedgeReason.STOPPED), 5.0),
        ({"code": FATAL, "stopped": True}, NoHedge(NoHedgeReason.FATAL), 10.0),
    ],
)
def test_decide_hedge_table(
    kwargs: dict[str, Any], expected: HedgeDecision, tokens_after: float
) -> None:
    """A6 §Hedging Policy, §Pushback, §Throttling: every outcome, and the token it costs."""
    params = dict(kwargs)
    t = _bucket(params.pop("tokens", 10.0))
    code = params.pop("code")
    attempts = params.pop("attempts", 1)
    got = decide_hedge(_hedging(), code, attempts=attempts, throttler=t, **params)
    assert got == expected
    assert t.tokens == tokens_after


def test_decide_hedge_without_throttler() -> None:
    """No retryThrottling: hedges are never throttled."""
    assert decide_hedge(_hedging(), None, attempts=1, throttler=None) == Hedge(0.0)
    assert decide_hedge(_hedging(), U, attempts=1, throttler=None) == Hedge(0.0)


# ---------------------------------------------------------------------------------------
# decide_transparent_retry (121-123)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # Never left the client: retried whatever the counts (A6: until the deadline).
        ({"sent": False}, TransparentRetry()),
        ({"sent": False, "transparent_retries": 99}, TransparentRetry()),
        ({"sent": False, "refused_retries": 7}, TransparentRetry()),
        # 121: a refused stream is retried once.
        ({"refused": True}, TransparentRetry()),
        (
            {"refused": True, "refused_retries": 1},
            NoTransparentRetry(NoTransparentRetryReason.REFUSED_LIMIT),
        ),
        # 122: above a GOAWAY's last stream id: up to the limit.
        ({}, TransparentRetry()),
        ({"transparent_retries": 4, "refused_retries": 1}, TransparentRetry()),
        ({"transparent_retries": 5}, NoTransparentRetry(NoTransparentRetryReason.LIMIT)),
        (
            {"transparent_retries": 5, "refused": True},
            NoTransparentRetry(NoTransparentRetryReason.LIMIT),
        ),
        # The request stream is no longer held for a replay (client streaming past the limit).
        ({"replay_kept": False}, NoTransparentRetry(NoTransparentRetryReason.NO_REPLAY)),
        (
            {"replay_kept": False, "sent": False},
            NoTransparentRetry(NoTransparentRetryReason.NO_REPLAY),
        ),
        # Response headers arrived: the server saw the call (A6 §When Retries are Valid).
        ({"headers_received": True}, NoTransparentRetry(NoTransparentRetryReason.HEADERS_RECEIVED)),
    ],
)
def test_decide_transparent_retry_table(
    kwargs: dict[str, object], expected: TransparentRetryDecision
) -> None:
    """A6 §Transparent Retries."""
    params: dict[str, object] = {
        "sent": True,
        "refused": False,
        "headers_received": False,
        "replay_kept": True,
        "transparent_retries": 0,
        "refused_retries": 0,
    } | kwargs
    assert decide_transparent_retry(**params) == expected  # type: ignore[arg-type]


def test_transparent_retry_limits() -> None:
    """The limits as named constants: one refused retry, five transparent ones per call."""
    assert (MAX_REFUSED_RETRIES, MAX_TRANSPARENT_RETRIES) == (1, 5)
