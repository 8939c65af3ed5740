"""connection-backoff.md arithmetic (CONFORMANCE items 76-79)."""

from __future__ import annotations

import pytest

from grpc_lite._backoff import BackoffConfig, ExponentialBackoff

NOMINAL = [1.0, 1.6, 2.56, 4.096, 6.5536, 10.48576, 16.777216, 26.8435456, 42.94967296,
           68.719476736, 109.9511627776, 120.0, 120.0, 120.0]  # fmt: skip


def test_default_parameters() -> None:
    """The defaults are connection-backoff.md's (item 76)."""
    cfg = BackoffConfig()
    assert (cfg.initial, cfg.multiplier, cfg.jitter, cfg.max, cfg.min_connect_timeout) == (
        1.0,
        1.6,
        0.2,
        120.0,
        20.0,
    )


def test_nominal_sequence_without_jitter_offset() -> None:
    """rand()=0.5 means zero jitter: the delays follow 1, 1.6, 2.56, ... capped at 120."""
    b = ExponentialBackoff(BackoffConfig(), rand=lambda: 0.5)
    assert [b.next_delay() for _ in NOMINAL] == pytest.approx(NOMINAL)


@pytest.mark.parametrize(("r", "factor"), [(0.0, 0.8), (0.999999, 1.2)])
def test_jitter_bounds(r: float, factor: float) -> None:
    """Each delay after the first lies within +-20% of nominal; the first is exact (item 77)."""
    b = ExponentialBackoff(BackoffConfig(), rand=lambda: r)
    delays = [b.next_delay() for _ in NOMINAL]
    assert delays[0] == 1.0
    for got, nominal in zip(delays[1:], NOMINAL[1:], strict=True):
        assert got == pytest.approx(nominal * factor, rel=1e-5)


def test_jitter_is_applied_to_the_capped_backoff() -> None:
    """Past the cap the nominal stays 120 and only the jitter moves the delay."""
    b = ExponentialBackoff(BackoffConfig(initial=100.0, max=120.0), rand=lambda: 1.0)
    assert b.next_delay() == 100.0
    assert b.next_delay() == pytest.approx(144.0)
    assert b.next_delay() == pytest.approx(144.0)


def test_reset_starts_again_at_initial() -> None:
    """A successful connection resets the sequence to INITIAL_BACKOFF (item 79)."""
    b = ExponentialBackoff(BackoffConfig(), rand=lambda: 0.5)
    for _ in range(5):
        b.next_delay()
    assert b.attempts == 5
    b.reset()
    assert b.attempts == 0
    assert b.next_delay() == 1.0
    assert b.next_delay() == pytest.approx(1.6)


def test_connect_timeout_is_at_least_min_connect_timeout() -> None:
    """One attempt may last max(deadline - now, MIN_CONNECT_TIMEOUT) (item 78)."""
    b = ExponentialBackoff(BackoffConfig(min_connect_timeout=20.0))
    assert b.connect_timeout(1.0) == 20.0
    assert b.connect_timeout(42.9) == 42.9


def test_small_parameters_for_tests() -> None:
    """Configured parameters (100 ms initial, 5 s max) follow the same rule."""
    b = ExponentialBackoff(BackoffConfig(initial=0.1, max=0.3), rand=lambda: 0.5)
    assert [b.next_delay() for _ in range(5)] == pytest.approx([0.1, 0.16, 0.256, 0.3, 0.3])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0.0},
        {"multiplier": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
        {"initial": 10.0, "max": 5.0},
        {"min_connect_timeout": 0.0},
    ],
)
def test_invalid_config_rejected(kwargs: dict[str, float]) -> None:
    """Nonsense parameters raise ValueError naming the field."""
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        BackoffConfig(**kwargs)
