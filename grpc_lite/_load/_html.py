"""The HTML report: one self-contained page, no network (no CDN, no fonts, no images).

Plots are inline SVG drawn here: the latency histogram, latency (p50/p99) and requests
per second over time, and calls per backend. Tables repeat ghz's report (summary, latency
distribution, status codes, errors, options). The ghz JSON report is embedded
(``<script type="application/json" id="report-json">``) and a few lines of inline script
offer it (and the per-second timeline as CSV) for download; the page reads fine without
scripts. Every number cell carries ``data-value`` with the raw JSON value.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from ._report import nano_unit

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:1.5rem;margin:0 0 4px}h2{font-size:1.1rem;margin:28px 0 10px}
.sub{color:#5b6475;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px 12px}
.card .k{font-size:.75rem;color:#5b6475;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:1.25rem;font-weight:600;margin-top:2px}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e8;min-width:40%}
th,td{padding:6px 12px;border-bottom:1px solid #eceff3;text-align:left;font-size:.9rem}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.panel{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:8px;overflow-x:auto}
svg text{font-size:11px;fill:#3b4252}
.axis{stroke:#9aa3b2;stroke-width:1}.grid{stroke:#eceff3;stroke-width:1}
.bar{fill:#2a9d8f}.bar.err{fill:#e76f51}.bar.b2{fill:#457b9d}
.legend span{display:inline-block;margin-right:14px;font-size:.85rem}
.legend i{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle}
pre{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px;overflow-x:auto;
font-size:.8rem}
.bad{color:#b42318}.ok{color:#067647}
a.button{display:inline-block;padding:6px 12px;border:1px solid #9aa3b2;border-radius:6px;
color:#1d2330;text-decoration:none;margin-right:8px;background:#fff}
footer{color:#5b6475;font-size:.8rem;margin-top:32px}
"""

_SCRIPT = """
(function () {
  var report = JSON.parse(document.getElementById('report-json').textContent);
  function offer(id, name, type, text) {
    var a = document.getElementById(id);
    a.href = URL.createObjectURL(new Blob([text], {type: type}));
    a.download = name;
  }
  offer('dl-json', 'report.json', 'application/json', JSON.stringify(report, null, 2));
  var rows = ['second,count,errors,p50_ns,p99_ns,messages'];
  (report.grpcLite && report.grpcLite.timeline || []).forEach(function (t) {
    rows.push([t.second, t.count, t.errors, t.p50, t.p99, t.messages].join(','));
  });
  offer('dl-csv', 'timeline.csv', 'text/csv', rows.join('\\n') + '\\n');
  document.body.setAttribute('data-ready', 'true');
})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _nice_step(span: float, ticks: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _ms(ns: float) -> str:
    ms = ns / 1e6
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def _svg_bars(
    labels: list[str],
    values: list[float],
    *,
    chart_id: str,
    title: str,
    y_label: str,
    classes: list[str] | None = None,
    width: int = 1000,
    height: int = 280,
) -> str:
    """Vertical bars with a y axis; one ``<rect class="bar">`` per value."""
    left, right, top, bottom = 64, 16, 16, 56
    w, h = width - left - right, height - top - bottom
    top_value = max(values) if values and max(values) > 0 else 1.0
    step = _nice_step(top_value)
    y_max = math.ceil(top_value / step) * step
    out = [
        f'<svg id="{chart_id}" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = top + h - h * tick / y_max
        out.append(f'<line class="grid" x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt_tick(tick)}</text>'
        )
        tick += step
    n = max(1, len(values))
    slot = w / n
    bar_w = max(1.0, min(slot * 0.8, 120.0))
    every = max(1, math.ceil(n / 12))
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + i * slot + (slot - bar_w) / 2
        bh = h * value / y_max
        cls = f"bar {classes[i]}" if classes else "bar"
        out.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{top + h - bh:.1f}" width="{bar_w:.1f}" '
            f'height="{bh:.1f}" data-label="{_e(label)}" data-value="{value:g}">'
            f"<title>{_e(label)}: {value:g}</title></rect>"
        )
        if i % every == 0:
            cx = left + i * slot + slot / 2
            out.append(
                f'<text x="{cx:.1f}" y="{top + h + 16}" text-anchor="middle">{_e(label)}</text>'
            )
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + h}"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{left + w}" y1="{top + h}" y2="{top + h}"/>')
    out.append(
        f'<text x="14" y="{top + h / 2:.1f}" transform="rotate(-90 14 {top + h / 2:.1f})" '
        f'text-anchor="middle">{_e(y_label)}</text>'
    )
    out.append(
        f'<text x="{left + w / 2:.1f}" y="{height - 8}" text-anchor="middle">{_e(title)}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _fmt_tick(value: float) -> str:
    if value >= 1000 and value == int(value):
        return f"{int(value):,}"
    return f"{value:g}"


def _svg_lines(
    series: list[tuple[str, str, list[float]]],
    *,
    chart_id: str,
    title: str,
    y_label: str,
    width: int = 1000,
    height: int = 260,
) -> str:
    """Lines over seconds 1..N; each series is (name, colour, values per second)."""
    left, right, top, bottom = 64, 16, 16, 44
    w, h = width - left - right, height - top - bottom
    n = max((len(v) for _, _, v in series), default=0)
    top_value = max((max(v) for _, _, v in series if v), default=1.0) or 1.0
    step = _nice_step(top_value)
    y_max = math.ceil(top_value / step) * step
    out = [
        f'<svg id="{chart_id}" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = top + h - h * tick / y_max
        out.append(f'<line class="grid" x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt_tick(tick)}</text>'
        )
        tick += step

    def x_of(i: int) -> float:
        return left + (w * i / (n - 1) if n > 1 else w / 2)

    every = max(1, math.ceil(n / 12))
    for i in range(0, n, every):
        out.append(
            f'<text x="{x_of(i):.1f}" y="{top + h + 16}" text-anchor="middle">{i + 1}s</text>'
        )
    for name, colour, values in series:
        points = " ".join(
            f"{x_of(i):.1f},{top + h - h * v / y_max:.1f}" for i, v in enumerate(values)
        )
        out.append(
            f'<polyline class="series" data-series="{_e(name)}" fill="none" stroke="{colour}" '
            f'stroke-width="2" points="{points}"/>'
        )
        for i, v in enumerate(values):
            out.append(
                f'<circle cx="{x_of(i):.1f}" cy="{top + h - h * v / y_max:.1f}" r="2.5" '
                f'fill="{colour}"><title>{_e(name)} at {i + 1}s: {v:g}</title></circle>'
            )
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + h}"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{left + w}" y1="{top + h}" y2="{top + h}"/>')
    out.append(
        f'<text x="14" y="{top + h / 2:.1f}" transform="rotate(-90 14 {top + h / 2:.1f})" '
        f'text-anchor="middle">{_e(y_label)}</text>'
    )
    out.append(
        f'<text x="{left + w / 2:.1f}" y="{height - 6}" text-anchor="middle">{_e(title)}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _legend(items: list[tuple[str, str]]) -> str:
    spans = "".join(f'<span><i style="background:{c}"></i>{_e(n)}</span>' for n, c in items)
    return f'<div class="legend">{spans}</div>'


def _card(key: str, label: str, value: Any, shown: str) -> str:
    return (
        f'<div class="card"><div class="k">{_e(label)}</div>'
        f'<div class="v" id="summary-{key}" data-value="{_e(value)}">{_e(shown)}</div></div>'
    )


def render_html(report: dict[str, Any]) -> str:
    lite = report.get("grpcLite") or {}
    options = report.get("options") or {}
    name = report.get("name") or ""
    title = f"grpc-lite load{' - ' + name if name else ''}"
    errors_total = sum((report.get("errorDistribution") or {}).values())
    parts: list[str] = []
    add = parts.append
    add(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>')
    add('<meta name="viewport" content="width=device-width, initial-scale=1">')
    add(f"<style>{_CSS}</style></head><body><main>")
    add(f"<h1>{_e(title)}</h1>")
    add(
        f'<p class="sub">{_e(options.get("call", ""))} on {_e(options.get("host", ""))} · '
        f"{_e(report.get('date', ''))} · end: {_e(report.get('endReason', ''))}"
        f"{' · ' + _e(lite['kind']) if lite.get('kind') else ''}</p>"
    )
    for warning in lite.get("warnings") or []:
        add(f'<p class="bad">Warning: {_e(warning)}</p>')

    add('<h2 id="summary">Summary</h2><div class="cards">')
    add(_card("count", "Count", report["count"], f"{report['count']:,}"))
    add(_card("total", "Total", report["total"], nano_unit(report["total"])))
    add(_card("slowest", "Slowest", report["slowest"], nano_unit(report["slowest"])))
    add(_card("fastest", "Fastest", report["fastest"], nano_unit(report["fastest"])))
    add(_card("average", "Average", report["average"], nano_unit(report["average"])))
    add(_card("rps", "Requests/sec", report["rps"], f"{report['rps']:.2f}"))
    cls = "bad" if errors_total else "ok"
    add(
        f'<div class="card"><div class="k">Errors</div><div class="v {cls}" '
        f'id="summary-errors" data-value="{errors_total}">{errors_total:,}</div></div>'
    )
    add("</div>")

    buckets = report.get("histogram") or []
    add('<h2 id="histogram">Latency histogram</h2><div class="panel">')
    if buckets:
        add(
            _svg_bars(
                [_ms(b["mark"] * 1e9) for b in buckets],
                [float(b["count"]) for b in buckets],
                chart_id="chart-histogram",
                title="latency (ms, bucket upper mark)",
                y_label="calls",
            )
        )
    else:
        add("<p>No successful calls.</p>")
    add("</div>")

    dist = lite.get("latencyDistribution") or report.get("latencyDistribution") or []
    add('<h2 id="latency">Latency distribution</h2><table id="latency-table"><tr>')
    add("".join(f'<th class="num">p{d["percentage"]:g}</th>' for d in dist))
    add("</tr><tr>")
    add(
        "".join(
            f'<td class="num" id="p{d["percentage"]:g}" data-value="{d["latency"]}">'
            f"{_e(nano_unit(d['latency']))}</td>"
            for d in dist
        )
    )
    add("</tr></table>")

    timeline = lite.get("timeline") or []
    if timeline:
        add('<h2 id="over-time">Over time</h2><div class="panel">')
        add(_legend([("p50", "#2a9d8f"), ("p99", "#e76f51")]))
        add(
            _svg_lines(
                [
                    ("p50 ms", "#2a9d8f", [t["p50"] / 1e6 for t in timeline]),
                    ("p99 ms", "#e76f51", [t["p99"] / 1e6 for t in timeline]),
                ],
                chart_id="chart-latency-time",
                title="latency of the calls that ended in each second (ms)",
                y_label="ms",
            )
        )
        add(_legend([("requests/s", "#457b9d"), ("errors/s", "#b42318")]))
        add(
            _svg_lines(
                [
                    ("requests/s", "#457b9d", [float(t["count"]) for t in timeline]),
                    ("errors/s", "#b42318", [float(t["errors"]) for t in timeline]),
                ],
                chart_id="chart-rps-time",
                title="calls ended per second",
                y_label="calls/s",
            )
        )
        add("</div>")

    backends = lite.get("backends") or {}
    if backends:
        add('<h2 id="backends">Calls per backend</h2><div class="panel">')
        addresses = list(backends)
        add(
            _svg_bars(
                addresses,
                [float(backends[a]["attempts"]) for a in addresses],
                chart_id="chart-backends",
                title="attempts per backend (retries and hedges included)",
                y_label="attempts",
                classes=["b2"] * len(addresses),
                height=240,
            )
        )
        add("</div><table id='backend-table'><tr><th>backend</th><th class='num'>attempts</th>")
        add("<th class='num'>ok</th><th class='num'>failed</th></tr>")
        for address in addresses:
            b = backends[address]
            add(
                f"<tr data-backend='{_e(address)}'><td>{_e(address)}</td>"
                f'<td class="num" data-value="{b["attempts"]}">{b["attempts"]:,}</td>'
                f'<td class="num" data-value="{b["ok"]}">{b["ok"]:,}</td>'
                f'<td class="num" data-value="{b["failed"]}">{b["failed"]:,}</td></tr>'
            )
        add("</table>")
        add(
            f'<p>Retries: <span id="retries">{lite.get("retries", 0)}</span> · '
            f'hedged attempts: <span id="hedges">{lite.get("hedges", 0)}</span></p>'
        )
    if lite.get("messagesSent") or lite.get("messagesReceived"):
        add(
            f'<p>Stream messages: <span id="messages-sent">{lite.get("messagesSent", 0)}</span> '
            f'sent, <span id="messages-received">{lite.get("messagesReceived", 0)}</span> '
            f"received ({lite.get('messagesReceivedPerSecond', 0.0):.2f}/s)</p>"
        )
    lag = lite.get("sendLag")
    if lag:
        add(
            f"<p>Send lag (due time to send, open model): p50 {_e(nano_unit(lag['p50']))}, "
            f"p99 {_e(nano_unit(lag['p99']))}, max {_e(nano_unit(lag['max']))}</p>"
        )

    status = report.get("statusCodeDistribution") or {}
    add('<h2 id="status">Status code distribution</h2><table id="status-table">')
    add("<tr><th>status</th><th class='num'>count</th><th class='num'>% of total</th></tr>")
    for code, n in status.items():
        pct = 100.0 * n / report["count"] if report["count"] else 0.0
        add(
            f"<tr data-status='{_e(code)}'><td>{_e(code)}</td>"
            f'<td class="num" data-value="{n}">{n:,}</td><td class="num">{pct:.2f} %</td></tr>'
        )
    add("</table>")
    errors = report.get("errorDistribution") or {}
    if errors:
        add('<h2 id="errors">Errors</h2><table id="error-table">')
        add("<tr><th>error</th><th class='num'>count</th><th class='num'>% of total</th></tr>")
        for text, n in errors.items():
            pct = 100.0 * n / report["count"] if report["count"] else 0.0
            add(
                f"<tr><td>{_e(text)}</td><td class='num' data-value='{n}'>{n:,}</td>"
                f"<td class='num'>{pct:.2f} %</td></tr>"
            )
        add("</table>")

    add('<h2 id="data">Data</h2><a class="button" id="dl-json">JSON</a>')
    add('<a class="button" id="dl-csv">Timeline CSV</a>')
    add('<h2 id="options">Options</h2>')
    add(f"<pre>{_e(json.dumps(options, indent=2))}</pre>")
    add("<footer>Generated by grpc-lite load. ghz-compatible report.</footer></main>")
    payload = json.dumps(report).replace("</", "<\\/")
    add(f'<script type="application/json" id="report-json">{payload}</script>')
    add(f"<script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)
