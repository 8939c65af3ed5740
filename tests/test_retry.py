"""Retry decisions, backoff, pushback and throttling (CONFORMANCE items 104-134)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from grpc_lite._retry import (
    PUSHBACK_STOP,
    NoRetry,
    NoRetryReason,
    PushbackResult,
    Retry,
    RetryDecision,
    RetryThrottler,
    decide_retry,
    hedge_allowed,
    parse_pushback,
    retry_backoff,
)
from grpc_lite.service_config import RetryPolicy, RetryThrottling, parse_service_config
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
    retries_enabled: bool = True,
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
        retries_enabled=retries_enabled,
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
        # 104: no policy, no configured retries.
        ({"policy": None}, NoRetry(NoRetryReason.NO_POLICY)),
        # 118: retries switched off by option.
        ({"retries_enabled": False}, NoRetry(NoRetryReason.DISABLED)),
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
    ],
)
def test_decide_retry_table(kwargs: dict[str, object], expected: RetryDecision) -> None:
    """Items 104-106, 108, 109, 112, 118 without a throttler."""
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
        ({"retries_enabled": False}, 10.0),
        ({"code": StatusCode.OK}, 10.0),
        ({"code": StatusCode.INVALID_ARGUMENT}, 10.0),  # 130: non-retryable codes are free
        ({}, 9.0),  # retryable failure takes 1
        ({"committed": True}, 9.0),  # still a retryable failure
        ({"attempts": 5}, 9.0),  # maxAttempts reached: still counted
        ({"pushback": PUSHBACK_STOP}, 9.0),  # 112: "don't retry" counts as a failure
        # A6 §Throttling: a "don't retry" pushback counts whatever the status code.
        ({"pushback": PUSHBACK_STOP, "code": StatusCode.INTERNAL}, 9.0),
        ({"pushback": 100}, 9.0),
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
# Hedging (124-132)
# ---------------------------------------------------------------------------------------


def test_hedge_allowed() -> None:
    """131/132: hedges go only while tokens > max/2; no throttler -> always."""
    assert hedge_allowed(None)
    t = RetryThrottler(4, 1)
    assert hedge_allowed(t)
    t.record_failure()  # 3
    assert hedge_allowed(t)
    t.record_failure()  # 2
    assert not hedge_allowed(t)
