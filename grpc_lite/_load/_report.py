"""The report: shards merged exactly, then ghz's JSON schema, summary, CSV and Influx lines.

``build_report`` returns a dict in ghz's ``runner.Report`` JSON layout (``count``,
``total``, ``average``, ``fastest``, ``slowest``, ``rps``, ``histogram``,
``latencyDistribution``, ``statusCodeDistribution``, ``errorDistribution``, ``details``,
``options``, ``date``, ``endReason``, ``name``, ``tags``; durations in nanoseconds), so tools
that read ghz reports read it. What ghz has no field for (p99.9, the HDR histogram,
per-second timeline, calls per backend, retry and hedge attempts, stream messages, send
lag, whether the workers busy-polled) is under the extra key ``grpcLite``, which ghz's
readers ignore.
"""

from __future__ import annotations

import datetime as _dt
import io
from typing import Any

from ._engine import Interval, ShardResult
from ._histogram import percentile_of_sparse, sparse_to_hdr, value_of
from ._spec import GO_CODE_NAMES

__all__ = [
    "GHZ_PERCENTILES",
    "PERCENTILES",
    "build_report",
    "format_csv",
    "format_influx_details",
    "format_influx_summary",
    "format_summary",
    "merge",
    "nano_unit",
]

GHZ_PERCENTILES = [10, 25, 50, 75, 90, 95, 99]
PERCENTILES: list[float] = [10, 25, 50, 75, 90, 95, 99, 99.9]


def merge(results: list[ShardResult]) -> ShardResult:
    """Add up shards exactly (counts, HDR buckets, per-second ticks, backends)."""
    if len(results) == 1:
        return results[0]
    out = ShardResult()
    intervals: dict[int, Interval] = {}
    for r in results:
        out.count += r.count
        out.ok += r.ok
        out.total_latency_ns += r.total_latency_ns
        if r.fastest_ns and (not out.fastest_ns or r.fastest_ns < out.fastest_ns):
            out.fastest_ns = r.fastest_ns
        out.slowest_ns = max(out.slowest_ns, r.slowest_ns)
        for k, v in r.counts.items():
            out.counts[k] = out.counts.get(k, 0) + v
        for name, n in r.status.items():
            out.status[name] = out.status.get(name, 0) + n
        for text, n in r.errors.items():
            out.errors[text] = out.errors.get(text, 0) + n
        for iv in r.intervals:
            m = intervals.get(iv.index)
            if m is None:
                intervals[iv.index] = Interval(
                    iv.index, iv.count, iv.errors, dict(iv.counts), iv.messages
                )
            else:
                m.count += iv.count
                m.errors += iv.errors
                m.messages += iv.messages
                for k, v in iv.counts.items():
                    m.counts[k] = m.counts.get(k, 0) + v
        out.details.extend(r.details)
        out.started_ns = min(out.started_ns, r.started_ns) if out.started_ns else r.started_ns
        out.elapsed_s = max(out.elapsed_s, r.elapsed_s)
        for address, b in r.backends.items():
            acc = out.backends.setdefault(address, {"attempts": 0, "ok": 0, "failed": 0})
            for key, value in b.items():
                acc[key] = acc.get(key, 0) + value
        out.retries += r.retries
        out.hedges += r.hedges
        out.messages_sent += r.messages_sent
        out.messages_received += r.messages_received
        for k, v in r.lag_counts.items():
            out.lag_counts[k] = out.lag_counts.get(k, 0) + v
        out.lag_max_ns = max(out.lag_max_ns, r.lag_max_ns)
        out.workers_max += r.workers_max
    out.busy_poll = all(r.busy_poll for r in results)
    reasons = {r.end_reason for r in results}
    out.end_reason = (
        "cancel" if "cancel" in reasons else ("timeout" if "timeout" in reasons else "normal")
    )
    out.intervals = [intervals[k] for k in sorted(intervals)]
    out.details.sort()
    return out


def _rfc3339(ns: int) -> str:
    stamp = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.UTC).astimezone()
    return stamp.replace(microsecond=0).isoformat()


def _histogram(
    counts: dict[int, int], fastest: int, slowest: int, total: int
) -> list[dict[str, Any]]:
    """ghz's 11 linear buckets from fastest to slowest (marks in seconds)."""
    if total == 0:
        return []
    bc = 10
    step = (slowest - fastest) / bc
    marks = [fastest + step * i for i in range(bc)] + [float(slowest)]
    tallies = [0] * (bc + 1)
    for index in sorted(counts):
        value = min(max(value_of(index), fastest), slowest)
        b = 0
        while b < bc and value > marks[b]:
            b += 1
        tallies[b] += counts[index]
    return [
        {"mark": marks[i] / 1e9, "count": tallies[i], "frequency": tallies[i] / total}
        for i in range(bc + 1)
    ]


def build_report(
    result: ShardResult,
    *,
    options: dict[str, Any],
    name: str = "",
    tags: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    r = result
    total_ns = int(r.elapsed_s * 1e9)
    hist = sparse_to_hdr(r.counts)
    ok_total = hist.get_total_count()
    report: dict[str, Any] = {}
    if name:
        report["name"] = name
    report["endReason"] = r.end_reason
    report["date"] = _rfc3339(r.started_ns + total_ns)
    report["options"] = options
    report["count"] = r.count
    report["total"] = total_ns
    report["average"] = int(r.total_latency_ns / r.count) if r.count else 0
    report["fastest"] = r.fastest_ns if ok_total else 0
    report["slowest"] = r.slowest_ns if ok_total else 0
    report["rps"] = r.count / r.elapsed_s if r.elapsed_s > 0 else 0.0
    report["errorDistribution"] = dict(sorted(r.errors.items(), key=lambda kv: -kv[1]))
    report["statusCodeDistribution"] = _ordered_status(r.status)
    pct = {p: int(hist.get_value_at_percentile(p)) if ok_total else 0 for p in PERCENTILES}
    # ghz clamps nothing, but an HDR bucket's top can pass the exact slowest: keep order.
    for p in PERCENTILES:
        if ok_total and r.slowest_ns:
            pct[p] = min(pct[p], r.slowest_ns)
    report["latencyDistribution"] = (
        [{"percentage": p, "latency": pct[p]} for p in GHZ_PERCENTILES] if ok_total else None
    )
    report["histogram"] = (
        _histogram(r.counts, r.fastest_ns, r.slowest_ns, ok_total) if ok_total else None
    )
    report["details"] = [
        {
            "timestamp": _rfc3339_nano(ts),
            "latency": lat,
            "error": err,
            "status": GO_CODE_NAMES[code],
        }
        for ts, lat, code, err in r.details
    ]
    if tags:
        report["tags"] = tags
    lite: dict[str, Any] = {
        "latencyDistribution": [{"percentage": p, "latency": pct[p]} for p in PERCENTILES]
        if ok_total
        else [],
        "hdrHistogram": hist.encode().decode("ascii") if ok_total else "",
        "timeline": [
            {
                "second": iv.index,
                "count": iv.count,
                "errors": iv.errors,
                "p50": percentile_of_sparse(iv.counts, 50),
                "p99": percentile_of_sparse(iv.counts, 99),
                "messages": iv.messages,
            }
            for iv in r.intervals
        ],
        "backends": dict(sorted(r.backends.items())),
        "retries": r.retries,
        "hedges": r.hedges,
        "messagesSent": r.messages_sent,
        "messagesReceived": r.messages_received,
        "messagesReceivedPerSecond": r.messages_received / r.elapsed_s if r.elapsed_s else 0.0,
        "workers": r.workers_max,
        "busyPoll": r.busy_poll,
    }
    if r.lag_counts:
        lite["sendLag"] = {
            "p50": percentile_of_sparse(r.lag_counts, 50),
            "p99": percentile_of_sparse(r.lag_counts, 99),
            "max": r.lag_max_ns,
        }
    if extra:
        lite.update(extra)
    report["grpcLite"] = lite
    return report


def _rfc3339_nano(ns: int) -> str:
    stamp = _dt.datetime.fromtimestamp(ns // 10**9, tz=_dt.UTC).astimezone()
    base = stamp.isoformat()
    # Insert the nanoseconds before the UTC offset.
    cut = len(base) - 6
    return f"{base[:cut]}.{ns % 10**9:09d}{base[cut:]}"


def _ordered_status(status: dict[str, int]) -> dict[str, int]:
    order = {name: i for i, name in enumerate(GO_CODE_NAMES)}
    return dict(sorted(status.items(), key=lambda kv: order.get(kv[0], 99)))


def nano_unit(ns: float) -> str:
    """ghz's formatNanoUnit."""
    v = int(ns)
    if v < 10000:
        return f"{v} ns"
    ms = v / 1e6
    if ms < 1000:
        return f"{ms:4.2f} ms"
    return f"{ms / 1000:4.2f} s"


def _percentage(p: float) -> str:
    return f"{p:g}"


def format_summary(report: dict[str, Any]) -> str:
    """ghz's summary layout, then what grpc_lite adds (p99.9, backends, retries, ...)."""
    out = io.StringIO()
    w = out.write
    w("\nSummary:\n")
    if report.get("name"):
        w(f"  Name:\t\t{report['name']}\n")
    w(f"  Count:\t{report['count']}\n")
    w(f"  Total:\t{nano_unit(report['total'])}\n")
    w(f"  Slowest:\t{nano_unit(report['slowest'])}\n")
    w(f"  Fastest:\t{nano_unit(report['fastest'])}\n")
    w(f"  Average:\t{nano_unit(report['average'])}\n")
    w(f"  Requests/sec:\t{report['rps']:4.2f}\n")
    lite = report.get("grpcLite", {})
    buckets = report.get("histogram") or []
    w("\nResponse time histogram:\n")
    if buckets:
        max_count = max(b["count"] for b in buckets)
        marks = [f"{b['mark'] * 1000:.3f}" for b in buckets]
        counts = [str(b["count"]) for b in buckets]
        mw, cw = max(map(len, marks)), max(map(len, counts))
        for mark, count, b in zip(marks, counts, buckets, strict=True):
            bar = (b["count"] * 40 + max_count // 2) // max_count if max_count else 0
            w(f"  {mark:<{mw}} [{count}]{' ' * (cw - len(count))} |{'∎' * bar}\n")
    w("\nLatency distribution:")
    for item in lite.get("latencyDistribution") or report.get("latencyDistribution") or []:
        w(f"\n  {_percentage(item['percentage'])} % in {nano_unit(item['latency'])} ")
    w("\n\n")
    status = report.get("statusCodeDistribution") or {}
    if status:
        w("Status code distribution:\n")
        width = max(len(s) for s in status) + 2
        for code, n in status.items():
            w(f"  {'[' + code + ']':<{width}}   {n} responses   \n")
    w("\n")
    errors = report.get("errorDistribution") or {}
    if errors:
        w("Error distribution:\n")
        width = max(len(str(n)) for n in errors.values()) + 2
        for text, n in errors.items():
            w(f"  {'[' + str(n) + ']':<{width}}   {text}   \n")
        w("\n")
    backends = lite.get("backends") or {}
    if backends:
        w("Calls per backend (attempts include retries and hedges):\n")
        width = max(len(a) for a in backends)
        for address, b in backends.items():
            w(
                f"  {address:<{width}}   {b['attempts']} attempts   {b['ok']} ok   "
                f"{b['failed']} failed\n"
            )
        w(f"  retries: {lite.get('retries', 0)}   hedges: {lite.get('hedges', 0)}\n\n")
    if lite.get("messagesSent") or lite.get("messagesReceived"):
        w(
            f"Stream messages: {lite.get('messagesSent', 0)} sent, "
            f"{lite.get('messagesReceived', 0)} received "
            f"({lite.get('messagesReceivedPerSecond', 0.0):.2f} received/sec)\n\n"
        )
    lag = lite.get("sendLag")
    if lag:
        w(
            f"Send lag (due time to send, open model): p50 {nano_unit(lag['p50'])}, "
            f"p99 {nano_unit(lag['p99'])}, max {nano_unit(lag['max'])}\n\n"
        )
    for warning in lite.get("warnings", []):
        w(f"Warning: {warning}\n")
    return out.getvalue()


def format_csv(report: dict[str, Any]) -> str:
    """ghz's CSV: one row per call."""
    rows = ["duration (ms),status,error"]
    for d in report.get("details") or []:
        error = d["error"].replace(",", ";").replace("\n", " ")
        rows.append(f"{d['latency'] / 1e6:4.2f},{d['status']},{error}")
    return "\n" + "\n".join(rows) + "\n"


def _influx_clean(text: str) -> str:
    return text.replace(" ", "\\ ").replace(",", "\\,").replace("=", "\\=")


def _influx_tags(report: dict[str, Any], add_errors: bool) -> str:
    import json

    o = report.get("options", {})
    tags = []
    if report.get("name"):
        tags.append(f'name="{_influx_clean(report["name"].strip())}"')
    if o.get("proto"):
        tags.append(f'proto="{o["proto"]}"')
    elif o.get("protoset"):
        tags.append(f'Protoset="{o["protoset"]}"')
    tags.append(f'call="{o.get("call", "")}"')
    tags.append(f'host="{o.get("host", "")}"')
    tags.append(f"n={o.get('total', 0)}")
    if o.get("concurrency-schedule", "const") == "const":
        tags.append(f"c={o.get('concurrency', 0)}")
    else:
        for key in ("schedule", "start", "end", "step", "step-duration", "max-duration"):
            k = "concurrency-" + key
            tags.append(f"{k}={o.get(k, 0)}")
    if o.get("load-schedule", "const") == "const":
        tags.append(f"rps={o.get('rps', 0)}")
    else:
        for key in ("schedule", "start", "end", "step", "step-duration", "max-duration"):
            k = "load-" + key
            tags.append(f"{k}={o.get(k, 0)}")
    tags.append(f"z={o.get('duration', 0)}")
    tags.append(f"timeout={o.get('timeout', 0) / 1e9:g}")
    tags.append(f"dial_timeout={o.get('dial-timeout', 0) / 1e9:g}")
    tags.append(f"keepalive={o.get('keepalive', 0) / 1e9:g}")
    data = json.dumps(json.dumps(o.get("data"), separators=(",", ":")))
    tags.append(f"data={_influx_clean(data)}")
    md = o.get("metadata")
    tags.append(
        "metadata="
        + (_influx_clean(json.dumps(json.dumps(md, separators=(",", ":")))) if md else '""')
    )
    t = report.get("tags")
    tags.append(
        "tags=" + (_influx_clean(json.dumps(json.dumps(t, separators=(",", ":")))) if t else '""')
    )
    if add_errors:
        errors = sum((report.get("errorDistribution") or {}).values())
        tags.append(f"errors={errors}")
        tags.append(f"has_errors={'true' if errors else 'false'}")
    return ",".join(tags)


def _date_ns(report: dict[str, Any]) -> int:
    stamp = _dt.datetime.fromisoformat(report["date"])
    return int(stamp.timestamp()) * 10**9


def format_influx_summary(report: dict[str, Any]) -> str:
    fields = [
        f"count={report['count']}",
        f"total={report['total']}",
        f"average={report['average']}",
        f"fastest={report['fastest']}",
        f"slowest={report['slowest']}",
        f"rps={report['rps']:4.2f}",
    ]
    for item in report.get("latencyDistribution") or []:
        if item["percentage"] == 50:
            fields.append(f"median={item['latency']}")
        if item["percentage"] == 95:
            fields.append(f"p95={item['latency']}")
    errors = sum((report.get("errorDistribution") or {}).values())
    fields.append(f"errors={errors}")
    return f"ghz_run,{_influx_tags(report, True)} {','.join(fields)} {_date_ns(report)}"


def format_influx_details(report: dict[str, Any]) -> str:
    common = _influx_tags(report, False)
    lines = []
    for d in report.get("details") or []:
        has_error = "true" if d["error"] else "false"
        stamp = d["timestamp"]
        head, _, rest = stamp.partition(".")
        nanos = int(rest[:9]) if rest else 0
        seconds = int(_dt.datetime.fromisoformat(head + rest[9:]).timestamp())
        lines.append(
            f"ghz_detail,{common},hasError={has_error} latency={d['latency']},"
            f'error="{_influx_clean(d["error"])}",status="{d["status"]}" '
            f"{seconds * 10**9 + nanos}"
        )
    return "\n".join(lines) + ("\n" if lines else "")
