"""The dashboard's HTML, rendered on the server from plain string templates.

Every value that comes from data (batch names, session ids, reasons, messages: CSV files and
Stripe answers, so hostile text) goes through :func:`esc` or :func:`href`; nothing else is
interpolated. Pages load one local stylesheet and one local script (``static/``), no CDN; the
Content-Security-Policy set by the app forbids inline scripts, so an injected ``<script>``
would not run even if escaping were missed.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from vsbatch.model.row import BatchInfo, BatchState, Outcome, RowRecord
from vsbatch.ops.reasons import why
from vsbatch.ops.reports import OUTCOME_ORDER, counts_dict
from vsbatch.web.data import FoundBatch, RowFilter

__all__ = ["batch_page", "esc", "href", "index_page", "message_page", "session_page"]


def esc(value: object) -> str:
    """``value`` as HTML text, safe in element content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def href(*parts: str, query: dict[str, str] | None = None) -> str:
    """A same-site path from raw parts (each percent-encoded), escaped for an attribute."""
    path = "/" + "/".join(quote(part, safe="") for part in parts)
    if query:
        path += "?" + urlencode(query)
    return esc(path)


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def layout(title: str, body: str) -> str:
    """A whole page: head, skip link, navigation, and ``body`` as the main content."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · vsbatch</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Main"><a href="/">vsbatch batches</a></nav>
<p id="live">live: connecting</p></header>
<main id="main" tabindex="-1">
<h1>{esc(title)}</h1>
{body}
</main>
</body>
</html>
"""


def _progress(batch: BatchInfo) -> str:
    label = f"{batch.id} progress"
    return (
        f'<progress data-field="progress" value="{batch.terminal}" max="{max(batch.total, 1)}"'
        f' aria-label="{esc(label)}"></progress>'
        f' <span data-field="terminal">{batch.terminal}</span>/'
        f'<span data-field="total">{batch.total}</span>'
    )


def _accounts(live: dict[str, Any]) -> str:
    """Each account's rate against its limit, and the workers alive."""
    items = []
    for acc in live.get("accounts", []):
        limit = "no limit read" if acc["limit"] is None else f"{acc['limit']:g} req/s"
        current = "-" if acc["current"] is None else f"{acc['current']:g}"
        items.append(
            f'<li data-account="{esc(acc["account"])}">{esc(acc["account"])}:'
            f' <span data-field="rate">{acc["rate"]:g}</span> rows/s against a limit of'
            f" {esc(limit)} (allowed now, after any 429:"
            f' <span data-field="current">{esc(current)}</span> req/s)</li>'
        )
    listed = "".join(items) or "<li>no open batch</li>"
    return (
        '<section aria-labelledby="accounts-h"><h2 id="accounts-h">Accounts</h2>'
        f'<ul id="accounts">{listed}</ul>'
        f'<p>workers alive: <span id="workers">{int(live.get("workers", 0))}</span></p></section>'
    )


def _archived_table(batches: list[BatchInfo]) -> str:
    """Batches that have left Redis, from the results store: final counters, nothing live."""
    if not batches:
        return ""
    rows = "".join(
        f'<tr><td><a href="{href("batches", b.id)}">{esc(b.id)}</a></td><td>{esc(b.name)}</td>'
        f"<td>archived ({esc(b.state.value)})</td><td>{b.terminal}/{b.total}</td>"
        f"<td>{esc(b.account or 'platform')}</td><td>{esc(_when(b.created_at))}</td></tr>"
        for b in batches
    )
    return (
        '<section aria-labelledby="archived-h"><h2 id="archived-h">Archived batches</h2>'
        "<p>These have left Redis: read from the results store, no live counters, no"
        " actions.</p>"
        '<table id="archived"><caption>Newest archived batches first</caption><thead><tr>'
        '<th scope="col">batch</th><th scope="col">name</th><th scope="col">state</th>'
        '<th scope="col">rows done</th><th scope="col">account</th>'
        f'<th scope="col">created</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


def index_page(
    batches: Iterable[BatchInfo], live: dict[str, Any], archived: list[BatchInfo] | None = None
) -> str:
    """The newest batches with their progress and rate, each account's rate and limit, and
    the newest batches that have left Redis (``archived``)."""
    rates = {b["id"]: b["rate"] for b in live.get("batches", [])}
    rows = []
    for b in batches:
        rows.append(
            f'<tr data-batch="{esc(b.id)}"><td><a href="{href("batches", b.id)}">{esc(b.id)}</a>'
            f"</td><td>{esc(b.name)}</td>"
            f'<td data-field="state">{esc(b.state.value)}</td><td>{_progress(b)}</td>'
            f'<td><span data-field="rate">{rates.get(b.id, 0.0):g}</span> rows/s</td>'
            f"<td>{esc(b.account or 'platform')}</td><td>{esc(_when(b.created_at))}</td></tr>"
        )
    table = (
        '<table id="batches"><caption>Newest batches first</caption><thead><tr>'
        '<th scope="col">batch</th><th scope="col">name</th><th scope="col">state</th>'
        '<th scope="col">progress</th><th scope="col">rate</th><th scope="col">account</th>'
        '<th scope="col">created</th></tr></thead><tbody>'
        + ("".join(rows) or '<tr><td colspan="7">no batch in the ledger</td></tr>')
        + "</tbody></table>"
    )
    body = _accounts(live) + '<section aria-labelledby="batches-h"><h2 id="batches-h">Batches</h2>'
    body += '<p id="new-batches" hidden>New batches started: <a href="/">show them</a></p>'
    body += table + "</section>" + _archived_table(archived or [])
    return layout("vsbatch dashboard", body)


def _counters(batch: BatchInfo, *, live: bool = True) -> str:
    """The counters by outcome; ``live`` ones carry the batch id the live script updates."""
    cells = "".join(
        f'<tr><th scope="row">{esc(o)}</th><td data-field="count-{esc(o)}">{n}</td></tr>'
        for o, n in counts_dict(batch).items()
    )
    followed = f' data-batch="{esc(batch.id)}"' if live else ""
    caption = "Rows by outcome" if live else "Rows by outcome (final, archived)"
    return (
        f'<table id="counters"{followed}><caption>{caption}</caption><tbody>{cells}'
        f'<tr><th scope="row">state</th><td data-field="state">{esc(batch.state.value)}</td></tr>'
        f'<tr><th scope="row">progress</th><td>{_progress(batch)}</td></tr>'
        + (
            '<tr><th scope="row">rate</th><td><span data-field="rate">0</span> rows/s</td></tr>'
            if live
            else ""
        )
        + "</tbody></table>"
    )


def _action_form(batch: BatchInfo, csrf: str, action: str, label: str) -> str:
    """One action's own form: Enter in its token field does this action, never another."""
    field = f"token-{action}"
    return (
        f'<form class="action" method="post" action="{href("batches", batch.id, action)}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<label for="{field}">Access token (printed by <code>vsbatch web</code>)</label> '
        f'<input id="{field}" name="token" type="password" autocomplete="off" required> '
        f'<button type="submit">{esc(label)}</button></form>'
    )


def _actions(batch: BatchInfo, csrf: str) -> str:
    """Retry, and Cancel while the batch may still change: a form each, each its token."""
    forms = _action_form(batch, csrf, "retry", "Retry failed rows")
    if batch.state is BatchState.OPEN or batch.state is BatchState.STAGING:
        forms += _action_form(batch, csrf, "cancel", "Cancel batch")
    return (
        '<section aria-labelledby="actions-h" id="actions"><h2 id="actions-h">Actions</h2>'
        f"{forms}</section>"
    )


def _archived_note() -> str:
    return (
        '<section aria-labelledby="actions-h"><h2 id="actions-h">Archived</h2>'
        "<p>This batch has left Redis: it is read from the results store, its counters are"
        " final, and retry and cancel (which work on the ledger) cannot act on it.</p></section>"
    )


def _filters(batch: BatchInfo, wanted: RowFilter) -> str:
    chosen = wanted.outcome.value if wanted.outcome is not None else ""
    options = ['<option value="">any</option>'] + [
        f'<option value="{o.value}"{" selected" if o.value == chosen else ""}>{o.value}</option>'
        for o in OUTCOME_ORDER
    ]
    return (
        f'<form id="filters" method="get" action="{href("batches", batch.id)}">'
        '<label for="f-outcome">Outcome</label> '
        f'<select id="f-outcome" name="outcome">{"".join(options)}</select> '
        '<label for="f-reason">Reason contains</label> '
        f'<input id="f-reason" name="reason" value="{esc(wanted.reason)}"> '
        '<label for="f-session">Session id contains</label> '
        f'<input id="f-session" name="session" value="{esc(wanted.session)}"> '
        '<button type="submit">Filter rows</button></form>'
    )


def rows_table(rows: list[RowRecord], caption: str, *, with_batch: bool = False) -> str:
    """Rows as a table: session (a link to its history), outcome, why, attempts."""
    head = '<th scope="col">batch</th>' if with_batch else ""
    lines = []
    for r in rows:
        batch_cell = f'<td><a href="{href("batches", r.batch_id)}">{esc(r.batch_id)}</a></td>'
        lines.append(
            f"<tr>{batch_cell if with_batch else ''}<td>{r.row}</td>"
            f'<td><a href="{href("sessions", r.session_id)}">{esc(r.session_id)}</a></td>'
            f"<td>{esc(r.outcome.value)}</td><td>{esc(why(r))}</td><td>{r.attempts}</td>"
            f"<td>{esc(_when(r.updated_at))}</td></tr>"
        )
    body = "".join(lines) or '<tr><td colspan="7">no row</td></tr>'
    return (
        f'<table class="rows"><caption>{esc(caption)}</caption><thead><tr>{head}'
        '<th scope="col">row</th><th scope="col">session</th><th scope="col">outcome</th>'
        '<th scope="col">why</th><th scope="col">attempts</th><th scope="col">updated</th>'
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def batch_page(
    found: FoundBatch,
    rows: list[RowRecord],
    *,
    wanted: RowFilter,
    limit: int,
    csrf: str,
    notice: str = "",
) -> str:
    """A batch: its counters (live), actions, the failures CSV, and its rows, filtered; for
    a batch from the results store, its final counters and no action."""
    batch = found.info
    said = f'<p class="notice" role="alert">{esc(notice)}</p>' if notice else ""
    parent = (
        f'<p>retry of <a href="{href("batches", batch.parent_id)}">{esc(batch.parent_id)}</a></p>'
        if batch.parent_id
        else ""
    )
    failed = batch.counts.get(Outcome.FAILED, 0) + batch.counts.get(Outcome.REJECTED, 0)
    csv_link = (
        f'<p><a href="{href("batches", batch.id, "failures.csv")}" download>Download failures'
        f" as CSV</a> ({failed} failed or rejected rows)</p>"
    )
    more = f" (the first {limit} shown)" if len(rows) >= limit else ""
    body = (
        said
        + f"<p>{esc(batch.name)} · {esc(batch.kind)} · account {esc(batch.account or 'platform')}"
        f" · created {esc(_when(batch.created_at))}</p>"
        + parent
        + _counters(batch, live=not found.archived)
        + (_archived_note() if found.archived else _actions(batch, csrf))
        + '<section aria-labelledby="rows-h"><h2 id="rows-h">Rows</h2>'
        + csv_link
        + _filters(batch, wanted)
        + rows_table(rows, f"{len(rows)} rows{more}")
        + "</section>"
    )
    return layout(f"Batch {batch.id}", body)


def session_page(session_id: str, rows: list[RowRecord], source: str) -> str:
    """A session's updates across batches, oldest first."""
    body = f"<p>From {esc(source)}.</p>" + rows_table(
        rows, f"{len(rows)} updates of this session", with_batch=True
    )
    return layout(f"Session {session_id}", body)


def message_page(title: str, line: str) -> str:
    """A page that says one thing (not found, refused), with the way back."""
    return layout(title, f'<p role="alert">{esc(line)}</p><p><a href="/">Back to batches</a></p>')
