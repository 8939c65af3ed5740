"""HDR buckets, exact merging across shards, ghz's report fields, --assert parsing."""

from __future__ import annotations

import random

import pytest

from grpc_lite._cli_shared import CliError
from grpc_lite._load._assert import check, parse_thresholds
from grpc_lite._load._engine import Interval, ShardResult
from grpc_lite._load._histogram import Recorder, index_of, new_hdr, sparse_to_hdr, value_of
from grpc_lite._load._report import build_report, format_summary, merge, nano_unit


def test_bucket_index_is_hdrhistograms() -> None:
    hdr = new_hdr()
    rng = random.Random(7)
    values = [1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 10**6, 3600 * 10**9]
    values += [rng.randint(1, 3600 * 10**9) for _ in range(5000)]
    for v in values:
        assert index_of(v) == hdr._counts_index_for(v)
        assert value_of(index_of(v)) == hdr.get_lowest_equivalent_value(v)


def _shard(values: list[int], errors: int = 0) -> ShardResult:
    rec = Recorder()
    rec.pending = list(values)
    counts = rec.fold()
    r = ShardResult(
        count=len(values) + errors,
        ok=len(values),
        total_latency_ns=sum(values),
        fastest_ns=min(values),
        slowest_ns=max(values),
        counts=dict(rec.counts),
        status={"OK": len(values)} | ({"Unavailable": errors} if errors else {}),
        errors={"rpc error: code = Unavailable desc = x": errors} if errors else {},
        intervals=[Interval(0, len(values) + errors, errors, counts)],
        started_ns=1_700_000_000 * 10**9,
        elapsed_s=2.0,
        backends={"a:1": {"attempts": len(values), "ok": len(values), "failed": 0}},
    )
    return r


def test_merging_shards_is_exact() -> None:
    """Merged shard histograms equal one histogram of all the values, bucket for bucket,
    and so do their HdrHistogram encodings once decoded and added."""
    rng = random.Random(1)
    a = [rng.randint(50_000, 5_000_000) for _ in range(3000)]
    b = [rng.randint(100_000, 90_000_000) for _ in range(2000)]
    merged = merge([_shard(a), _shard(b, errors=3)])
    whole = _shard(a + b)
    assert merged.counts == whole.counts
    assert merged.count == 5003 and merged.ok == 5000
    assert merged.fastest_ns == min(a + b) and merged.slowest_ns == max(a + b)
    assert merged.status == {"OK": 5000, "Unavailable": 3}
    assert merged.backends == {"a:1": {"attempts": 5000, "ok": 5000, "failed": 0}}
    assert merged.intervals[0].count == 5003
    hdr = new_hdr()
    hdr.decode_and_add(sparse_to_hdr(_shard(a).counts).encode())
    hdr.decode_and_add(sparse_to_hdr(_shard(b).counts).encode())
    whole_hdr = sparse_to_hdr(whole.counts)
    for p in (10, 50, 90, 99, 99.9):
        assert hdr.get_value_at_percentile(p) == whole_hdr.get_value_at_percentile(p)


def test_report_percentiles_within_hdr_precision() -> None:
    values = list(range(1_000_000, 2_000_000, 1000))  # 1000 values, 1.000..1.999 ms
    report = build_report(_shard(values), options={})
    dist = {d["percentage"]: d["latency"] for d in report["latencyDistribution"]}
    for p, latency in dist.items():
        exact = values[max(0, int(p / 100 * len(values)) - 1)]
        assert latency == pytest.approx(exact, rel=2e-3)
    assert report["average"] == sum(values) // len(values)
    assert report["fastest"] == 1_000_000 and report["slowest"] == 1_999_000
    assert report["rps"] == 500.0
    assert report["date"].startswith("2023-11-14T")


def test_nano_unit_is_ghz_format() -> None:
    assert nano_unit(9999) == "9999 ns"
    assert nano_unit(1_234_567) == "1.23 ms"
    assert nano_unit(2_500_000_000) == "2.50 s"


def test_summary_lists_errors_and_backends() -> None:
    report = build_report(_shard([1_000_000] * 10, errors=2), options={})
    text = format_summary(report)
    assert "Error distribution:\n  [2]   rpc error: code = Unavailable desc = x" in text
    assert "[Unavailable]   2 responses" in text
    assert "a:1   10 attempts   10 ok   0 failed" in text


def test_asserts() -> None:
    report = build_report(_shard([1_000_000] * 98, errors=2), options={})
    assert (
        check(parse_thresholds(["p99<2ms", "errors<=2,errors<3%", "rps>=1", "avg<1s"]), report)
        == []
    )
    broken = check(parse_thresholds(["p50>5ms", "errors<1%", "count==3"]), report)
    assert broken == [
        "p50>5ms (measured 1.000ms)",
        "errors<1% (measured 2.000%)",
        "count==3 (measured 100)",
    ]
    for bad in ("p99", "p200<1ms", "latency<1ms", "rps<1ms", "errors<1ms", "p99<1"):
        with pytest.raises(CliError):
            parse_thresholds([bad])
