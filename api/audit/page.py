"""Server-rendered HTML of the audit page (no templates engine, no CDN: assets under /audit/static)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from api.audit.store import AuditQuery

VERDICTS = (
    "forbidden",
    "syntax_error",
    "bad_form",
    "invalid_input",
    "nondeterministic",
    "timeout",
    "memory_limit",
    "output_limit",
    "runtime_error",
    "sandbox_error",
    "ok",
    "wrong",
)
COLORS = {
    "forbidden": "#d62728",
    "syntax_error": "#9467bd",
    "bad_form": "#8c564b",
    "invalid_input": "#e377c2",
    "nondeterministic": "#ff7f0e",
    "timeout": "#bcbd22",
    "memory_limit": "#17becf",
    "output_limit": "#1f77b4",
    "runtime_error": "#7f7f7f",
    "sandbox_error": "#000000",
    "ok": "#2ca02c",
    "wrong": "#aec7e8",
}


def when(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def layout(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · AZR audit</title>
<link rel="stylesheet" href="/audit/static/audit.css">
</head><body>
<header><a class="brand" href="/audit">AZR audit trail</a>
<nav><a href="/audit">Records</a><a href="/audit/runs">Runs</a><a href="/docs">API</a></nav></header>
<main>{body}</main>
<script src="/audit/static/audit.js"></script>
</body></html>"""


def badge(verdict: str) -> str:
    return f'<span class="badge" style="background:{COLORS.get(verdict, "#555")}">{_e(verdict)}</span>'


def chart_svg(stats: dict[str, Any], width: int = 900, height: int = 190) -> str:
    """A standalone SVG: stacked bars of records by verdict per time bucket, with a legend."""
    buckets = stats.get("buckets") or []
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="sans-serif" role="img" aria-label="audit records by verdict over time">'
        "<style>.tick{font-size:10px;fill:#6b7280}.leg{font-size:11px;fill:#1d2330}</style>"
    )
    if not buckets:
        return (
            head
            + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="tick">no records in range</text></svg>'
        )
    top = max(sum(b["counts"].values()) for b in buckets) or 1
    pad_l, pad_b, pad_t = 40, 44, 8
    inner_w, inner_h = width - pad_l - 10, height - pad_b - pad_t
    start0 = stats.get("from", buckets[0]["start"])
    end0 = stats.get("to", buckets[-1]["start"] + stats["bucket_s"])
    span = max(stats["bucket_s"], end0 - start0)
    bar_w = max(2.0, inner_w * stats["bucket_s"] / span - 1)
    base_y = pad_t + inner_h
    parts = [
        head,
        f'<line x1="{pad_l}" y1="{base_y}" x2="{width - 10}" y2="{base_y}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" class="tick" text-anchor="end">{top}</text>',
        f'<text x="{pad_l - 4}" y="{base_y}" class="tick" text-anchor="end">0</text>',
        f'<text x="{pad_l}" y="{base_y + 13}" class="tick">{_e(when(start0))} UTC</text>',
        f'<text x="{width - 10}" y="{base_y + 13}" class="tick" text-anchor="end">{_e(when(end0))} UTC</text>',
    ]
    for bucket in buckets:
        x = pad_l + inner_w * (bucket["start"] - start0) / span
        y = base_y
        for verdict in VERDICTS:
            n = bucket["counts"].get(verdict, 0)
            if not n:
                continue
            h = inner_h * n / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{COLORS[verdict]}">'
                f"<title>{_e(when(bucket['start']))} {verdict}: {n}</title></rect>"
            )
    x = pad_l
    for verdict, n in sorted(stats.get("by_verdict", {}).items(), key=lambda kv: -kv[1]):
        label = f"{verdict} {n}"
        parts.append(
            f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{COLORS.get(verdict, "#555")}"/>'
            f'<text x="{x + 14}" y="{height - 7}" class="leg">{_e(label)}</text>'
        )
        x += 22 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)


def filters_form(query: AuditQuery, params: dict[str, str]) -> str:
    chosen = set(query.verdict or [])
    options = '<option value="">any verdict</option>' + "".join(
        f'<option value="{v}"{" selected" if v in chosen else ""}>{v}</option>' for v in VERDICTS
    )

    def field(name: str, label: str, placeholder: str = "", kind: str = "text") -> str:
        return (
            f'<label>{label}<input type="{kind}" name="{name}" id="f-{name}" value="{_e(params.get(name, ""))}" '
            f'placeholder="{_e(placeholder)}"></label>'
        )

    return f"""<form id="filters" class="filters" method="get" action="/audit">
<label>verdict<select name="verdict" id="f-verdict">{options}</select></label>
{field("reason", "reason", "import os")}
{field("run", "run tag", "run name")}
{field("q", "program contains", "text")}
{field("since", "since", "2025-01-01T00:00 or epoch")}
{field("until", "until", "")}
<label>per page<input type="number" name="limit" id="f-limit" min="1" max="500" value="{query.limit}"></label>
<button type="submit" id="apply">Filter</button> <a href="/audit" class="button">Reset</a>
<a id="export" class="button" href="/v1/audit/export.jsonl?{_e(urlencode({k: v for k, v in params.items() if k not in ("cursor", "limit") and v}))}">Export JSONL</a>
</form>"""


def records_page(
    query: AuditQuery, records: list[dict[str, Any]], next_cursor: str | None, params: dict[str, str]
) -> str:
    rows = []
    for r in records:
        rows.append(
            f'<tr class="rec" data-id="{_e(r["id"])}" data-verdict="{_e(r["verdict"])}">'
            f'<td><a href="/audit/record/{_e(r["id"])}" class="rid">{_e(when(r["time"]))}</a></td>'
            f'<td class="verdict">{badge(r["verdict"])}</td><td>{_e(r.get("reason"))}</td>'
            f"<td>{_e(r.get('kind'))}/{_e(r.get('task_type'))}</td>"
            f'<td>{_run_link(r.get("run"))}</td><td class="num">{_e(r.get("step"))}</td>'
            f"<td><code>{_e(r.get('program_head'))}</code></td>"
            f'<td class="num">{(r.get("cpu_ms") or 0):.0f}</td><td class="num">{_e(r.get("maxrss_kb") or "")}</td></tr>'
        )
    table = (
        '<table id="records"><thead><tr><th>time (UTC)</th><th>verdict</th><th>reason</th><th>kind</th>'
        "<th>run</th><th>step</th><th>program</th><th>cpu ms</th><th>peak kB</th></tr></thead><tbody>"
        + ("".join(rows) or '<tr><td colspan="9" class="muted">No records match.</td></tr>')
        + "</tbody></table>"
    )
    base = {k: v for k, v in params.items() if k != "cursor" and v}
    pager = ['<div class="pager">']
    if query.cursor:
        pager.append(f'<a id="first" href="/audit?{_e(urlencode(base))}">« newest</a>')
        pager.append('<a id="newer" href="#" data-back="1">‹ newer</a>')
    if next_cursor:
        pager.append(
            f'<a id="older" href="/audit?{_e(urlencode({**base, "cursor": next_cursor}))}">older ›</a>'
        )
    pager.append(f'<span class="muted">{len(records)} shown</span></div>')
    title = f"Run {query.run}" if query.run else "Records"
    head = f"<h1>{_e(title)}</h1>" + (
        f'<p class="muted">Per-run view: every audit record tagged <b>{_e(query.run)}</b>. '
        f'<a href="/audit/runs">all runs</a></p>'
        if query.run
        else ""
    )
    chart_params = urlencode({k: v for k, v in params.items() if k not in ("cursor", "limit") and v})
    return layout(
        title,
        head
        + filters_form(query, params)
        + '<section class="panel"><h2>Records by verdict over time</h2>'
        + f'<img id="chart" class="chart" alt="records by verdict over time" src="/audit/chart.svg?{_e(chart_params)}">'
        + "</section>"
        + table
        + "".join(pager),
    )


def _run_link(run: Any) -> str:
    if run is None:
        return ""
    return f'<a href="/audit?{_e(urlencode({"run": run}))}">{_e(run)}</a>'


def record_page(record: dict[str, Any]) -> str:
    line = record.get("line")
    program = record.get("program") or ""
    lines = program.split("\n")
    code = "".join(
        f'<div class="ln{" marked" if line == n else ""}" data-line="{n}"{" id=marked-line" if line == n else ""}>'
        f'<span class="no">{n}</span><span class="src">{_e(text) or " "}</span></div>'
        for n, text in enumerate(lines, start=1)
    )
    meta_rows = [
        ("id", record.get("id")),
        ("time (UTC)", when(record.get("time"))),
        ("verdict", None),
        ("reason", record.get("reason")),
        ("kind", f"{record.get('kind')} / {record.get('task_type')}"),
        ("item id", record.get("item_id")),
        ("run", None),
        ("step", record.get("step")),
        ("requester (key id)", record.get("key_id") or "—"),
        ("cpu ms", f"{(record.get('cpu_ms') or 0):.1f}"),
        ("peak memory kB", record.get("maxrss_kb")),
        ("sampled", "yes" if record.get("sampled") else "no (always recorded)"),
        ("offending line", line if line is not None else "—"),
    ]
    meta = "".join(
        f"<tr><th>{k}</th><td>{badge(record['verdict']) if k == 'verdict' else _run_link(record.get('run')) if k == 'run' else _e(v)}</td></tr>"
        for k, v in meta_rows
    )
    finding = record.get("finding")
    finding_html = (
        f'<p id="finding" class="finding">static-check finding: {_e(finding.get("message"))}'
        f"{' (line ' + str(finding.get('line')) + ')' if finding.get('line') and not str(finding.get('message', '')).startswith('line ') else ''}</p>"
        if finding
        else ""
    )
    outputs = record.get("outputs") or []
    outputs_html = (
        '<h2>Differing outputs</h2><ol id="outputs">'
        + "".join(f"<li><code>{_e(o)}</code></li>" for o in outputs)
        + "</ol>"
        if outputs
        else ""
    )
    extra = ""
    for label, key in (
        ("input" + (f" #{record['input_index']}" if record.get("input_index") is not None else ""), "input"),
        ("answer", "answer"),
        ("gold output", "gold_output"),
    ):
        if record.get(key):
            extra += f'<h2>{_e(label)}</h2><pre class="plain" id="{key}">{_e(record[key])}</pre>'
    return layout(
        f"Record {record.get('id')}",
        f"<h1>Audit record {badge(record['verdict'])} <small>{_e(record.get('reason'))}</small></h1>"
        f'<p><a href="javascript:history.back()">‹ back</a> · <a href="/v1/audit/{_e(record["id"])}">JSON</a></p>'
        f'<p id="detail" class="detail">{_e(record.get("detail"))}</p>{finding_html}'
        f'<div class="cols"><table class="meta">{meta}</table></div>'
        f"<h2>Program <small>{record.get('program_chars', 0)} chars</small></h2>"
        f'<pre id="program" class="code" data-marked="{line if line is not None else ""}">{code}</pre>'
        + outputs_html
        + extra
        + f'<script type="application/json" id="record-json">{_e(json.dumps({"id": record["id"], "line": line}))}</script>',
    )


def runs_page(runs: list[dict[str, Any]]) -> str:
    rows = []
    for entry in runs:
        verdicts = " ".join(
            f"{badge(v)}&nbsp;{n}" for v, n in sorted(entry["by_verdict"].items(), key=lambda kv: -kv[1])
        )
        rows.append(
            f'<tr class="run"><td>{_run_link(entry["run"])}</td><td class="num">{entry["total"]}</td><td>{verdicts}</td>'
            f'<td class="num">{_e(entry.get("last_step"))}</td><td>{_e(when(entry["first"]))}</td><td>{_e(when(entry["last"]))}</td></tr>'
        )
    table = (
        '<table id="runs"><thead><tr><th>run</th><th>records</th><th>by verdict</th><th>last step</th>'
        "<th>first</th><th>last</th></tr></thead><tbody>"
        + ("".join(rows) or '<tr><td colspan="6" class="muted">No tagged records yet.</td></tr>')
        + "</tbody></table>"
    )
    return layout(
        "Runs", "<h1>Runs</h1><p class='muted'>Audit records by the run tag the trainer sends.</p>" + table
    )


def login() -> str:
    return layout(
        "Sign in",
        '<h1>API key needed</h1><form id="login" class="filters"><label>API key'
        '<input type="password" id="key" autocomplete="off"></label><button type="submit">Open</button></form>',
    )


def not_found(record_id: str) -> str:
    return layout("Not found", f"<h1>No record {_e(record_id)}</h1><p>Unknown, or trimmed by retention.</p>")
