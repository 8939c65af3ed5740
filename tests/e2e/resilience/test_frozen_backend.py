"""A frozen backend costs no call (issue 19): retries and hedges go to hosts the call has not
tried yet.

Three grpcio backend processes on 127.0.0.1/.2/.3 behind round_robin with health checks, 50
callers for 6.5 s, each backend frozen in turn for 1.5 s with SIGSTOP and resumed with SIGCONT
(`tests.e2e.resilience._freeze`). A frozen backend keeps its connection and its health stream
open, so round_robin keeps picking it. The servers count every attempt they see by the call's
``x-call-id`` and its ``grpc-previous-rpc-attempts``.

- With the preference on (the default), a hedging policy (3 attempts, 200 ms hedging delay, 1 s
  deadline) and a retry policy with a 300 ms perAttemptRecvTimeout lose no call, and no call
  has two attempts on one backend.
- With it off (channel option ``grpc_lite.avoid_previous_hosts`` = 0, or the policy's
  ``avoidPreviousHosts: false``) the same run shows the old behaviour: calls whose attempts
  repeat a backend (and, typically, a few dozen failed calls).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.resilience._freeze import FREEZES, Backends, Run, backends, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(40)]


@pytest.fixture
def frozen_backends() -> Iterator[Backends]:
    """The three counting backends; killed at teardown, frozen or not."""
    with backends() as b:
        yield b


def _check_preferred(run: Run, b: Backends) -> None:
    assert run.later_attempts > 0, "the freezes caused no retry or hedge"
    assert run.failed_calls == 0, (run.summary(), run.failures[:10])
    assert run.repeats == [], [(c, run.attempts[c]) for c in run.repeats[:10]]
    for seen in run.attempts.values():  # an original attempt, then the n-th retry or hedge
        assert sorted(previous for _, previous in seen) == list(range(len(seen))), seen
    snap = run.snapshot
    assert snap.attempts_on_previous_hosts == 0
    assert snap.attempts_on_new_hosts > 0
    # Every backend was frozen once, and its calls' later attempts avoided it.
    avoided = {sc.address: sc.attempts_avoided for sc in snap.subchannels}
    assert all(avoided[b.addresses[index]] > 0 for index, _, _ in FREEZES), avoided
    assert any(", avoiding " in e.description for e in snap.events)


async def test_hedged_calls_survive_frozen_backends(frozen_backends: Backends) -> None:
    """hedgingPolicy (maxAttempts 3, hedgingDelay 200 ms), 1 s deadline: a call whose first
    attempt sits on the frozen backend has its hedge on another one at 200 ms. No call fails,
    no call has two attempts on one backend."""
    run = await run_scenario(frozen_backends, "hedging")
    print(f"\nhedging, avoidPreviousHosts on: {run.summary()}")
    _check_preferred(run, frozen_backends)


async def test_retried_calls_survive_frozen_backends(frozen_backends: Backends) -> None:
    """retryPolicy with perAttemptRecvTimeout 300 ms, 1 s deadline: an attempt on the frozen
    backend times out and its retry goes to another backend. No call fails, no call has two
    attempts on one backend."""
    run = await run_scenario(frozen_backends, "retry")
    print(f"\nretry, avoidPreviousHosts on: {run.summary()}")
    _check_preferred(run, frozen_backends)


def _check_old_behaviour(run: Run) -> None:
    assert run.later_attempts > 0
    assert run.repeats, "no call had two attempts on one backend"
    assert run.snapshot.attempts_on_previous_hosts > 0
    assert all(sc.attempts_avoided == 0 for sc in run.snapshot.subchannels)
    assert any("avoidPreviousHosts is off" in e.description for e in run.snapshot.events)


async def test_hedges_repeat_backends_with_the_channel_option_off(
    frozen_backends: Backends,
) -> None:
    """The hedging run with ``grpc_lite.avoid_previous_hosts`` = 0: hedges are picked like
    first attempts, so some calls have two attempts on one backend (the frozen one, mostly)."""
    run = await run_scenario(frozen_backends, "hedging", avoid=False, switch="option")
    print(f"\nhedging, avoidPreviousHosts off (channel option): {run.summary()}")
    _check_old_behaviour(run)


async def test_retries_repeat_backends_with_the_policy_field_off(
    frozen_backends: Backends,
) -> None:
    """The retry run with ``"avoidPreviousHosts": false`` in the retryPolicy: retries are
    picked like first attempts, so some calls retry on the backend they timed out on."""
    run = await run_scenario(frozen_backends, "retry", avoid=False, switch="config")
    print(f"\nretry, avoidPreviousHosts off (service config): {run.summary()}")
    _check_old_behaviour(run)
