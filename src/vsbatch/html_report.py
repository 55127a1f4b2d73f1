"""The HTML report: one self-contained page about a batch (``vsbatch report --format html``).

The page holds everything inline (CSS, SVG charts; no scripts, fonts or images to fetch), so
it can be mailed or attached to a ticket: outcome totals with a bar chart, rows finished over
time (from each row's ``updated_at``), failures and rejections grouped by reason with their
rows, skips by reason, and the commands that retry or export the failures.

Rows are read once, in order; memory is bounded by the number of time buckets and by
``rows_per_group`` rows kept per failure group. Every text from the ledger goes through
``html.escape``; give the writer a :class:`vsbatch.redaction.RedactedLedger` to hide secrets.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, field
from html import escape

from vsbatch.ledger import BatchInfo, Ledger, Outcome, RowRecord
from vsbatch.reports import counts_dict

__all__ = ["render_html"]

COLORS = {
    "succeeded": "#2e7d32",
    "skipped": "#78909c",
    "failed": "#c62828",
    "rejected": "#ef6c00",
    "queued": "#90caf9",
    "running": "#1e88e5",
    "retrying": "#8e24aa",
}
# Bucket widths for the throughput chart, seconds: the smallest giving at most MAX_BUCKETS.
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_BUCKETS = 60

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 color:#1f2933;background:#f5f7fa}
main{max-width:1080px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.sub{color:#52606d;margin:0 0 18px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{background:#fff;border-radius:8px;padding:10px 14px;min-width:96px;
 box-shadow:0 1px 2px rgba(0,0,0,.08);border-top:4px solid #cbd2d9}
.tile .n{display:block;font-size:24px;font-weight:650}
.tile .label{color:#52606d;font-size:13px}
.card{background:#fff;border-radius:8px;padding:14px 16px;margin:10px 0;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{color:#52606d;font-weight:600}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#1f2933;color:#f5f7fa;padding:10px 12px;border-radius:6px;overflow-x:auto}
.muted{color:#7b8794}.badge{display:inline-block;border-radius:10px;padding:0 8px;
 color:#fff;font-size:12px}
svg text{font:12px system-ui,sans-serif;fill:#1f2933}
"""


@dataclass
class _Group:
    """Failed or rejected rows sharing one reason."""

    outcome: str
    title: str
    count: int = 0
    rows: list[RowRecord] = field(default_factory=list)


@dataclass
class _Scan:
    """What one pass over the rows collects."""

    start: float
    step: int
    buckets: list[int]
    groups: dict[tuple[str, str], _Group] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)
    retryable: int = 0


def _when(ts: float | None) -> str:
    if not ts:
        return "not yet"
    moment = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _message(record: RowRecord) -> str:
    """The row's own explanation (the group title leaves out what varies per row)."""
    if record.outcome is Outcome.REJECTED:
        return record.reason or "invalid row"
    return record.error_message or ""


def _group_key(record: RowRecord) -> str:
    """The group a failed or rejected row belongs to: its error class and code, or its reason
    with quoted values and numbers folded ("duplicate of row N", "Not a ... id: '…'")."""
    if record.outcome is Outcome.FAILED and (record.error_code or record.error_type):
        return " ".join(p for p in (record.error_type, record.error_code) if p)
    text = _message(record) or "failed"
    if record.outcome is Outcome.REJECTED and record.column:
        text = f"{record.column}: {text}"
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'…'", text))


def _scan(ledger: Ledger, batch: BatchInfo, end: float, rows_per_group: int) -> _Scan:
    span = max(1.0, end - batch.created_at)
    step = next((s for s in STEPS if span / s <= MAX_BUCKETS), STEPS[-1])
    scan = _Scan(start=batch.created_at, step=step, buckets=[0] * (math.ceil(span / step) or 1))
    for record in ledger.iter_rows(batch.id):
        if not record.is_terminal:
            continue
        index = int((record.updated_at - scan.start) // step) if record.updated_at else 0
        scan.buckets[min(max(index, 0), len(scan.buckets) - 1)] += 1
        if record.outcome is Outcome.SKIPPED:
            reason = record.reason or "skipped"
            scan.skips[reason] = scan.skips.get(reason, 0) + 1
        elif record.outcome in (Outcome.FAILED, Outcome.REJECTED):
            if record.outcome is Outcome.FAILED and record.retryable:
                scan.retryable += 1
            key = _group_key(record)
            group = scan.groups.setdefault(
                (record.outcome.value, key), _Group(record.outcome.value, key)
            )
            group.count += 1
            if len(group.rows) < rows_per_group:
                group.rows.append(record)
    return scan


def _tiles(batch: BatchInfo, counts: dict[str, int]) -> str:
    tiles = [
        f'<div class="tile" id="count-{escape(name)}" style="border-top-color:{COLORS[name]}">'
        f'<span class="n">{count}</span><span class="label">{escape(name)}</span></div>'
        for name, count in counts.items()
        if count or Outcome(name) in (Outcome.SUCCEEDED, Outcome.FAILED)
    ]
    tiles.append(
        f'<div class="tile" id="count-total"><span class="n">{batch.total}</span>'
        '<span class="label">total rows</span></div>'
    )
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _outcome_chart(counts: dict[str, int]) -> str:
    shown = [(name, n) for name, n in counts.items() if n]
    if not shown:
        return '<p class="muted">No rows.</p>'
    top = max(n for _, n in shown)
    bar_h, gap, label_w, width = 22, 8, 90, 640
    height = len(shown) * (bar_h + gap)
    parts = []
    for i, (name, n) in enumerate(shown):
        y = i * (bar_h + gap)
        w = max(2.0, (width - label_w - 70) * n / top)
        parts.append(
            f'<text x="0" y="{y + 15}">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" '
            f'fill="{COLORS[name]}"><title>{escape(name)}: {n}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{n}</text>'
        )
    return (
        f'<svg role="img" aria-label="rows by outcome" width="100%" viewBox="0 0 {width} '
        f'{height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def _throughput_chart(scan: _Scan) -> str:
    top = max(scan.buckets)
    if not top:
        return '<p class="muted">No row has finished yet.</p>'
    width, height, left, bottom = 640, 180, 40, 24
    plot_w, plot_h = width - left - 4, height - bottom - 8
    bar_w = plot_w / len(scan.buckets)
    parts = [
        f'<text x="0" y="14">{top}</text><text x="0" y="{plot_h + 8}">0</text>',
        f'<line x1="{left}" y1="{plot_h + 8}" x2="{width}" y2="{plot_h + 8}" stroke="#9aa5b1"/>',
    ]
    for i, n in enumerate(scan.buckets):
        if not n:
            continue
        h = plot_h * n / top
        x = left + i * bar_w
        at = _when(scan.start + i * scan.step)
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{plot_h + 8 - h:.1f}" width="{max(1.0, bar_w - 1):.1f}" '
            f'height="{h:.1f}" fill="#1e88e5"><title>{escape(at)}: {n} rows</title></rect>'
        )
    end = _when(scan.start + len(scan.buckets) * scan.step)
    parts.append(
        f'<text x="{left}" y="{height - 4}">{escape(_when(scan.start))}</text>'
        f'<text x="{width}" y="{height - 4}" text-anchor="end">{escape(end)}</text>'
    )
    return (
        f'<svg role="img" aria-label="rows finished over time" width="100%" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}'
        f'</svg><p class="muted">Rows finished per {scan.step} s.</p>'
    )


def _group_table(group: _Group) -> str:
    names = ("row", "session", "account", "message", "attempts", "request")
    head = "<tr>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"
    cells = []
    for r in group.rows:
        values = (r.row, r.session_id, r.account or "", _message(r), r.attempts, r.request_id or "")
        cells.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in values) + "</tr>")
    more = group.count - len(group.rows)
    tail = f'<p class="muted">and {more} more row(s) in the failures CSV.</p>' if more else ""
    badge = f'<span class="badge" style="background:{COLORS[group.outcome]}">'
    return (
        f'<div class="card group"><h3>{badge}{escape(group.outcome)}</span> '
        f'{escape(group.title)} <span class="muted">({group.count} row(s))</span></h3>'
        f"<table>{head}{''.join(cells)}</table>{tail}</div>"
    )


def _commands(batch: BatchInfo, scan: _Scan) -> str:
    bid = escape(batch.id)
    lines = [
        f"vsbatch failures {bid} -o failures.csv   # failed + rejected rows, re-submittable",
        f"vsbatch report {bid} --format csv -o report.csv",
    ]
    if scan.retryable:
        lines.insert(0, f"vsbatch retry {bid}   # {scan.retryable} retryable failure(s)")
    else:
        lines.insert(0, f"vsbatch retry {bid}   # no retryable failures right now")
    return "<pre>" + "\n".join(lines) + "</pre>"


def render_html(
    ledger: Ledger, batch: BatchInfo, *, now: float | None = None, rows_per_group: int = 100
) -> str:
    """The batch's report as one self-contained HTML page.

    Args:
        ledger: Where the rows are read (pass a ``RedactedLedger`` to hide secrets).
        batch: The batch, with its counters.
        now: The end of the time axis for an unfinished batch (default: the ledger's clock).
        rows_per_group: Rows listed per failure group (the count is always complete).

    Returns:
        The page, as text.
    """
    end = batch.finished_at or (now if now is not None else ledger.now())
    scan = _scan(ledger, batch, end, rows_per_group)
    counts = counts_dict(batch)
    title = f"vsbatch report: {batch.name or batch.id}"
    failed = [g for g in scan.groups.values() if g.outcome == "failed"]
    rejected = [g for g in scan.groups.values() if g.outcome == "rejected"]
    groups = sorted(failed, key=lambda g: -g.count) + sorted(rejected, key=lambda g: -g.count)
    problems = "".join(_group_table(g) for g in groups) or '<p class="muted">None.</p>'
    skips = "".join(
        f"<tr><td>{escape(reason)}</td><td>{n}</td></tr>"
        for reason, n in sorted(scan.skips.items(), key=lambda kv: -kv[1])
    )
    skipped = f"<table><tr><th>reason</th><th>rows</th></tr>{skips}</table>" if skips else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="sub">batch <code>{escape(batch.id)}</code> · {escape(batch.kind)} from '
        f"<code>{escape(batch.source)}</code> · <strong>{escape(batch.state.value)}</strong>"
        f" · started {escape(_when(batch.created_at))} · "
        f"{'finished ' + escape(_when(batch.finished_at)) if batch.finished_at else 'running'}"
        f" ({escape(_duration(end - batch.created_at))})</p>"
        f'<section id="totals"><h2>Outcomes</h2>{_tiles(batch, counts)}'
        f'<div class="card">{_outcome_chart(counts)}</div></section>'
        f'<section id="throughput"><h2>Throughput</h2><div class="card">'
        f"{_throughput_chart(scan)}</div></section>"
        f'<section id="failures"><h2>Failures and rejections by reason</h2>{problems}</section>'
        + (
            f'<section id="skipped"><h2>Skipped by reason</h2>{skipped}</section>'
            if skipped
            else ""
        )
        + f'<section id="next"><h2>What next</h2>{_commands(batch, scan)}</section>'
        "</main></body></html>\n"
    )
