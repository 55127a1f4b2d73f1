"""The HTML report: one self-contained page about a batch (``vsbatch report --format html``).

The page holds everything inline (CSS, SVG charts; no scripts, fonts or images to fetch), so
it can be mailed or attached to a ticket: outcome totals with a bar chart, rows finished over
time (from each row's ``updated_at``), both with labelled axes, failures and rejections
grouped by reason with their rows, skips by reason with the skipped rows, and the commands
that make sense now (``retry`` only when a failure is retryable).

Rows are read once, in order; memory is bounded by the number of time buckets and by
``rows_per_group`` rows kept per failure group. Every text from the ledger goes through
``html.escape``; give the writer a :class:`vsbatch.ops.redacted_ledger.RedactedRows` to hide
secrets.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, field
from html import escape

from vsbatch.model.row import BatchInfo, Outcome, RowRecord
from vsbatch.ops.next_steps import is_retryable, next_steps
from vsbatch.ops.reasons import why
from vsbatch.ops.reports import RowSource, counts_dict

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
    varied: bool = False  # its rows' messages differ in ids or quoted values


@dataclass
class _Scan:
    """What one pass over the rows collects."""

    start: float
    step: int
    buckets: list[int]
    groups: dict[tuple[str, str], _Group] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)
    skipped_rows: list[RowRecord] = field(default_factory=list)
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


# Parts of a message that name one row rather than the problem: quoted values, Stripe ids
# (vs_..., req_..., acct_...) and row numbers. Folded, messages that differ only there group.
_ROW_SPECIFIC = re.compile(r"'[^']*'|\"[^\"]*\"|\b[a-z]{2,6}_[A-Za-z0-9]{6,}\b|(?<=\brow )\d+")


def _title(record: RowRecord) -> str:
    """The row's problem as one line: error class and code for failures that have them."""
    if record.outcome is Outcome.FAILED and (record.error_code or record.error_type):
        return " ".join(p for p in (record.error_type, record.error_code) if p)
    text = _message(record) or "failed"
    if record.outcome is Outcome.REJECTED and record.column:
        text = f"{record.column}: {text}"
    return text


def _group_key(title: str) -> str:
    """The group of a row with this title: the title with its row-specific parts folded."""
    return _ROW_SPECIFIC.sub("…", title)


def _scan(ledger: RowSource, batch: BatchInfo, end: float, rows_per_group: int) -> _Scan:
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
            if len(scan.skipped_rows) < rows_per_group:
                scan.skipped_rows.append(record)
        elif record.outcome in (Outcome.FAILED, Outcome.REJECTED):
            if is_retryable(record):
                scan.retryable += 1
            title = _title(record)
            key = _group_key(title)
            group = scan.groups.setdefault(
                (record.outcome.value, key), _Group(record.outcome.value, title)
            )
            group.varied = group.varied or group.title != title
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


def _ticks(top: int, count: int = 4) -> list[int]:
    """Round axis values from 0 to at least ``top``: 0, step, 2 step... (1, 2 or 5 times 10^k)."""
    raw = max(1.0, top / count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [int(step * i) for i in range(math.ceil(top / step) + 1)]


def _axis_title(text: str, x: float, y: float, axis: str, *, rotate: bool = False) -> str:
    turn = f' transform="rotate(-90 {x} {y})"' if rotate else ""
    return (
        f'<text class="axis-title {axis}" x="{x}" y="{y}" text-anchor="middle"{turn}>'
        f"{escape(text)}</text>"
    )


def _svg(label: str, width: int, height: int, parts: list[str]) -> str:
    return (
        f'<svg role="img" aria-label="{escape(label)}" width="100%" viewBox="0 0 {width} '
        f'{height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def _outcome_chart(counts: dict[str, int]) -> str:
    shown = [(name, n) for name, n in counts.items() if n]
    if not shown:
        return '<p class="muted">No rows.</p>'
    ticks = _ticks(max(n for _, n in shown))
    bar_h, gap, left, width, bottom = 22, 8, 110, 640, 40
    plot_w = width - left - 40
    plot_h = len(shown) * (bar_h + gap)
    height = plot_h + bottom
    parts = [_axis_title("outcome", 12, plot_h / 2, "y", rotate=True)]
    for i, (name, n) in enumerate(shown):
        y = i * (bar_h + gap)
        w = max(2.0, plot_w * n / ticks[-1])
        parts.append(
            f'<text class="tick y" x="{left - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" '
            f'fill="{COLORS[name]}"><title>{escape(name)}: {n}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}">{n}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{plot_h}" x2="{left + plot_w}" y2="{plot_h}" stroke="#9aa5b1"/>'
    )
    for value in ticks:
        x = left + plot_w * value / ticks[-1]
        parts.append(
            f'<text class="tick x" x="{x:.1f}" y="{plot_h + 14}" text-anchor="middle">'
            f"{value}</text>"
        )
    parts.append(_axis_title("rows", left + plot_w / 2, height - 4, "x"))
    return _svg("rows by outcome", width, height, parts)


def _throughput_chart(scan: _Scan) -> str:
    if not max(scan.buckets):
        return '<p class="muted">No row has finished yet.</p>'
    ticks = _ticks(max(scan.buckets))
    width, height, left, top_pad, bottom = 640, 220, 56, 8, 44
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    base = top_pad + plot_h
    bar_w = plot_w / len(scan.buckets)
    parts = [
        _axis_title(f"rows finished per {scan.step} s", 12, top_pad + plot_h / 2, "y", rotate=True),
        f'<line x1="{left}" y1="{base}" x2="{width - 8}" y2="{base}" stroke="#9aa5b1"/>',
    ]
    for value in ticks:
        y = base - plot_h * value / ticks[-1]
        parts.append(
            f'<text class="tick y" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#e4e7eb"/>'
        )
    for i, n in enumerate(scan.buckets):
        if not n:
            continue
        h = plot_h * n / ticks[-1]
        x = left + i * bar_w
        at = _when(scan.start + i * scan.step)
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{base - h:.1f}" width="{max(1.0, bar_w - 1):.1f}" '
            f'height="{h:.1f}" fill="#1e88e5"><title>{escape(at)}: {n} rows</title></rect>'
        )
    # Ticks on bucket edges (at most 5): each names a different second.
    n = len(scan.buckets)
    parts_n = min(4, n)
    for k in range(parts_n + 1):
        edge = round(k * n / parts_n)
        anchor = "start" if k == 0 else "end" if k == parts_n else "middle"
        parts.append(
            f'<text class="tick x" x="{left + plot_w * edge / n:.1f}" y="{base + 16}" '
            f'text-anchor="{anchor}">{escape(_when(scan.start + edge * scan.step)[11:19])}</text>'
        )
    day = _when(scan.start)[:10]
    parts.append(_axis_title(f"time (UTC, {day})", left + plot_w / 2, height - 4, "x"))
    return _svg("rows finished over time", width, height, parts)


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
    varied = (
        '<p class="muted">The messages differ only in ids or quoted values: each row has its own'
        " below.</p>"
        if group.varied
        else ""
    )
    return (
        f'<div class="card group"><h3>{badge}{escape(group.outcome)}</span> '
        f'{escape(group.title)} <span class="muted">({group.count} row(s))</span></h3>'
        f"{varied}<table>{head}{''.join(cells)}</table>{tail}</div>"
    )


def _commands(batch: BatchInfo, scan: _Scan) -> str:
    """The commands that make sense now (never ``retry`` when nothing is retryable)."""
    steps = next_steps(batch, scan.retryable, report_format="csv")
    width = max(len(step.command) for step in steps)
    lines = [f"{escape(s.command.ljust(width))}   # {escape(s.why)}" for s in steps]
    return "<pre>" + "\n".join(lines) + "</pre>"


def _skipped_table(scan: _Scan, total: int) -> str:
    """Skips by reason, then the skipped rows themselves (the first ``rows_per_group``)."""
    by_reason = "".join(
        f"<tr><td>{escape(reason)}</td><td>{n}</td></tr>"
        for reason, n in sorted(scan.skips.items(), key=lambda kv: -kv[1])
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(v))}</td>"
            for v in (r.row, r.session_id, r.account or "", why(r), r.session_status or "")
        )
        + "</tr>"
        for r in scan.skipped_rows
    )
    more = total - len(scan.skipped_rows)
    tail = f'<p class="muted">and {more} more skipped row(s) in the CSV report.</p>' if more else ""
    return (
        f'<div class="card"><table><tr><th>reason</th><th>rows</th></tr>{by_reason}</table></div>'
        '<div class="card"><table id="skipped-rows"><tr><th>row</th><th>session</th>'
        f"<th>account</th><th>why</th><th>session status</th></tr>{rows}</table>{tail}</div>"
    )


def render_html(
    ledger: RowSource, batch: BatchInfo, *, now: float | None = None, rows_per_group: int = 100
) -> str:
    """The batch's report as one self-contained HTML page.

    Args:
        ledger: Where the rows are read (pass a ``RedactedRows`` to hide secrets).
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
    skipped = _skipped_table(scan, counts["skipped"]) if scan.skips else ""
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
        + (f'<section id="skipped"><h2>Skipped rows</h2>{skipped}</section>' if skipped else "")
        + f'<section id="next"><h2>What next</h2>{_commands(batch, scan)}</section>'
        "</main></body></html>\n"
    )
