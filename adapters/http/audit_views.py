"""The audit page's HTML: server-rendered, no script, every value escaped.

Reasons, actors, source references, request ids and webhook details come
from outside (Stripe, holders, operators): nothing is written into a page
without ``html.escape``. Account Link URLs and identity data are never
stored, and nothing here reads the account's Stripe snapshot.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from starlette.responses import HTMLResponse

from onboarding_fsm.account import Account
from onboarding_fsm.audit import ChainReport, Transition
from onboarding_fsm.events import InboxEntry
from onboarding_fsm.states import Source, State, Trigger

from .audit_auth import CHALLENGE

if TYPE_CHECKING:  # the report's type only: the page gets it from engine.audit
    from onboarding_fsm.auditing import AuditReport

#: no script at all; styles only inline; the page may not be framed
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"  # noqa: E501
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2430;background:#fff}
header{background:#0b2a6f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:baseline;flex-wrap:wrap}
header a{color:#fff}header .who{margin-left:auto;opacity:.85}
main{padding:1em 1.2em;max-width:1400px}h1{font-size:1.4em;margin:.2em 0 .6em}h2{font-size:1.15em;margin:1.4em 0 .5em}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #d5d9e0;padding:.3em .5em;text-align:left;
vertical-align:top}th{background:#eef1f6}td.num{text-align:right}.scroll{overflow-x:auto}
code,.mono{font-family:ui-monospace,monospace;font-size:.92em}.ok{color:#0a6b2d;font-weight:bold}
.bad{color:#b00020;font-weight:bold}.muted{color:#6b7280}form.filters{display:flex;gap:.8em;flex-wrap:wrap;
align-items:end;margin:.5em 0 1em}form.filters label{display:flex;flex-direction:column;font-size:.9em}
.button,button{background:#1d4ed8;color:#fff;border:0;border-radius:4px;padding:.45em .9em;text-decoration:none;
display:inline-block;font:inherit;cursor:pointer}.pager{margin:.8em 0}.pager a{margin-right:1em}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.summary dt{font-weight:bold}
dl.summary dd{margin:0}.legend{max-width:60em}time,.nowrap{white-space:nowrap}table.timeline{font-size:13px}
"""


def e(value: object) -> str:
    """Escaped text for HTML content and attribute values (None: empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def when(value: datetime | None) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    return f'<time datetime="{e(value.isoformat())}">{e(value.strftime("%Y-%m-%d %H:%M:%S"))}Z</time>'


def link(href: str, text: str, **attrs: str) -> str:
    extra = "".join(f' {name.rstrip("_").replace("_", "-")}="{e(v)}"' for name, v in attrs.items())
    return f'<a href="{e(href)}"{extra}>{e(text)}</a>'


def url(path: str, query: Mapping[str, str | None] | None = None) -> str:
    params = {k: v for k, v in (query or {}).items() if v}
    return path + ("?" + urlencode(params) if params else "")


def account_url(base: str, account_id: str) -> str:
    return f"{base}/accounts/{quote(account_id, safe='')}"


def table(headers: Sequence[str], rows: Iterable[str], *, empty: str = "Nothing here.", cls: str = "") -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    rows = f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
    return f'<div class="scroll"><table class="{e(cls)}">{rows}</table></div>'


def _layout(title: str, body: str, base: str | None, auditor: str | None) -> str:
    nav = ""
    if base is not None:
        nav = (
            f"<nav>{link(base, 'Accounts')} · {link(base + '/transitions', 'Transitions')} · "
            f"{link(base + '/verify', 'Verify the whole trail')}</nav>"
        )
    who = f'<span class="who">Signed in as <strong>{e(auditor)}</strong></span>' if auditor else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{e(title)} · onboarding-fsm audit</title><style>{STYLE}</style></head>"
        f"<body><header><strong>onboarding-fsm audit</strong>{nav}{who}</header>"
        f"<main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def page(title: str, body: str, *, base: str | None, auditor: str | None, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_layout(title, body, base, auditor), status_code=status, headers=HEADERS)


def message(title: str, text: str, *, base: str | None, auditor: str | None, status: int) -> HTMLResponse:
    return page(title, f'<p class="message">{e(text)}</p>', base=base, auditor=auditor, status=status)


def refused() -> HTMLResponse:
    response = message(
        "Sign in to read the audit trail", "The audit page needs an auditor's credentials.", base=None,
        auditor=None, status=401,
    )  # fmt: skip
    response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def _options(kind: Iterable[State | Trigger | Source], chosen: str | None) -> str:
    out = ['<option value="">any</option>']
    for member in kind:
        selected = " selected" if member.value == chosen else ""
        out.append(f'<option value="{e(member.value)}"{selected}>{e(member.value)}</option>')
    return "".join(out)


def _select(name: str, label: str, kind: Iterable[State | Trigger | Source], chosen: str | None) -> str:
    return f'<label>{e(label)}<select name="{e(name)}">{_options(kind, chosen)}</select></label>'


def _input(name: str, label: str, value: str | None, placeholder: str = "") -> str:
    return (
        f'<label>{e(label)}<input name="{e(name)}" value="{e(value)}" placeholder="{e(placeholder)}" '
        'autocomplete="off"></label>'
    )


# ---------------------------------------------------------------- accounts


def index(
    base: str,
    counts: Mapping[State, int],
    accounts: Sequence[Account],
    *,
    state: str | None,
    ref: str | None,
    next_url: str | None,
) -> str:
    count_rows = [
        f'<tr data-state="{e(s.value)}"><td>{link(url(base, {"state": s.value}), s.value)}</td>'
        f'<td class="num">{counts.get(s, 0)}</td></tr>'
        for s in State
    ]
    count_rows.append(f'<tr><td>{link(base, "all states")}</td><td class="num">{sum(counts.values())}</td></tr>')
    rows = [
        f'<tr data-account="{e(a.stripe_account_id)}" data-state="{e(a.state.value)}">'
        f"<td>{link(account_url(base, a.stripe_account_id), a.stripe_account_id, class_='account')}</td>"
        f"<td>{e(a.platform_ref)}</td><td>{e(a.state.value)}</td><td>{e(a.reason)}</td>"
        f'<td class="num">{a.audit_seq}</td><td>{when(a.created_at)}</td><td>{when(a.updated_at)}</td></tr>'
        for a in accounts
    ]
    shown = f"in state <strong>{e(state)}</strong>" if state else "in every state"
    if ref:
        shown = f"with platform reference <strong>{e(ref)}</strong>"
    pager = f'<p class="pager">{link(next_url, "Next page →", rel="next")}</p>' if next_url else ""
    first = f'<p class="pager">{link(url(base, {"state": state}), "← First page")}</p>' if next_url is None else ""
    return (
        f"<h2>Accounts by state</h2>{table(['state', 'accounts'], count_rows, cls='counts')}"
        f'<form class="filters" method="get" action="{e(base)}">{_select("state", "State", State, state)}'
        f'{_input("ref", "Platform reference", ref, "seller-42")}<button type="submit">Filter</button></form>'
        f"<h2>Accounts {shown}</h2>"
        + table(
            ["account", "platform reference", "state", "reason", "records", "created", "updated"],
            rows,
            empty="No account matches.",
            cls="accounts",
        )
        + pager
        + (first if accounts and (state or ref) else "")
    )


def _delta(record: Transition) -> str:
    if not record.delta:
        return '<span class="muted">—</span>'
    items = "".join(
        f"<li><code>{e(c.list_name)}</code>: "
        + ", ".join([*(f"+{e(n)}" for n in c.added), *(f"−{e(n)}" for n in c.removed)])
        + "</li>"
        for c in record.delta
    )
    return f"<details><summary>{len(record.delta)} list(s)</summary><ul>{items}</ul></details>"


def timeline_row(record: Transition, base: str | None = None) -> str:
    source = record.from_state.value if record.from_state else ""
    account = ""
    if base is not None:
        account = f"<td>{link(account_url(base, record.account_id), record.account_id)}</td>"
    sealed = f"sealed #{record.checkpoint}" if record.checkpoint is not None else "unsealed"
    return (
        f'<tr class="transition" data-account="{e(record.account_id)}" data-seq="{record.seq}" '
        f'data-from="{e(source)}" data-to="{e(record.to_state.value)}" data-trigger="{e(record.trigger.value)}">'
        f"{account}<td class='num'>{record.seq}</td><td>{when(record.at)}</td><td>{when(record.stripe_time)}</td>"
        f"<td class='nowrap'>{e(source) or '<span class=muted>(start)</span>'} → {e(record.to_state.value)}</td>"
        f"<td>{e(record.trigger.value)}</td><td>{e(record.source.value)}</td>"
        f'<td class="mono">{e(record.source_ref)}</td><td class="actor">{e(record.actor)}</td>'
        f'<td class="mono">{e(record.request_id)}</td><td class="mono">{e(record.run_id)}</td>'
        f'<td class="reason">{e(record.reason)}</td><td>{_delta(record)}</td>'
        f'<td class="mono" title="{e(record.hash)} ({e(sealed)}; key {e(record.key_id or "none")})">'
        f"{e(record.hash[:12])}</td></tr>"
    )


TIMELINE = ["seq", "at", "Stripe time", "from → to", "trigger", "source", "source ref", "actor",
            "request id", "run id", "reason", "requirements", "hash"]  # fmt: skip


def chain_status(report: ChainReport) -> str:
    if report.ok:
        return f'<span class="ok" data-chain="ok">Intact</span> ({report.records} record(s) recomputed)'
    return (
        f'<span class="bad" data-chain="broken">Broken at seq {e(report.broken_at)}</span>: {e(report.problem)} '
        f"({report.records} record(s) read)"
    )


def _inbox_row(entry: InboxEntry) -> str:
    return (
        f'<tr><td class="mono">{e(entry.event_id)}</td><td>{e(entry.type)}</td><td>{when(entry.created)}</td>'
        f"<td>{when(entry.received_at)}</td><td>{e(entry.outcome.value)}</td><td>{e(entry.detail)}</td>"
        f'<td class="num">{e(entry.transition_seq)}</td></tr>'
    )


def account_page(
    base: str,
    account: Account,
    history: Sequence[Transition],
    report: ChainReport,
    diagram: str,
    legend: str,
    inbox: Sequence[InboxEntry],
) -> str:
    times = " / ".join(map(when, (account.created_at, account.updated_at, account.synced_at)))
    issued = f"{when(account.link_issued_at)} (expires {when(account.link_expires_at)})"
    if account.link is not None:
        issued += " — " + e(", ".join(f"{k}={v}" for k, v in account.link.to_dict().items()))
    current = account.state.value
    summary = [
        ("Account", f'<span class="mono">{e(account.stripe_account_id)}</span>'),
        ("Platform reference", e(account.platform_ref)),
        ("State", f'<strong data-current-state="{e(current)}">{e(current)}</strong>'),
        ("Reason", e(account.reason)),
        ("Mode", "live" if account.livemode else "test"),
        ("Created / updated / synced", times),
        ("Last link issued", issued),
        ("Deauthorized or deleted", "yes" if account.detached else "no"),
        ("Chain", chain_status(report)),
        ("Chain head", f'<span class="mono">{e(account.audit_head)}</span> (seq {account.audit_seq})'),
    ]
    rows = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in summary)
    events = table(
        ["event", "type", "Stripe time", "received", "outcome", "detail", "record"],
        [_inbox_row(entry) for entry in inbox],
        empty="No webhook event recorded for this account.",
        cls="inbox",
    )
    return (
        f'<dl class="summary">{rows}</dl>'
        f"<h2>Path through the machine</h2>{diagram}{legend}"
        f"<h2>Timeline ({len(history)} record(s))</h2>"
        + table(TIMELINE, [timeline_row(r) for r in history], cls="timeline")
        + f"<p>{link(url(base + '/transitions', {'account': account.stripe_account_id}), 'Query these records')}</p>"
        + f"<h2>Recent webhook events (newest first)</h2>{events}"
    )


# ------------------------------------------------------------- transitions


def transitions_page(
    base: str, filters: Mapping[str, str | None], records: Sequence[Transition], next_url: str | None
) -> str:
    form = (
        f'<form class="filters" method="get" action="{e(base)}/transitions">'
        f"{_input('since', 'Since (UTC, inclusive)', filters.get('since'), '2026-03-02T09:30:00Z')}"
        f"{_input('until', 'Until (UTC, exclusive)', filters.get('until'), '2026-03-03')}"
        f"{_select('from_state', 'From', State, filters.get('from_state'))}"
        f"{_select('to_state', 'To', State, filters.get('to_state'))}"
        f"{_select('trigger', 'Trigger', Trigger, filters.get('trigger'))}"
        f"{_select('source', 'Source', Source, filters.get('source'))}"
        f"{_input('actor', 'Actor', filters.get('actor'), 'holder:…')}"
        f"{_input('account', 'Account', filters.get('account'), 'acct_…')}"
        '<button type="submit">Search</button></form>'
    )
    pager = f'<p class="pager">{link(next_url, "Next page →", rel="next")}</p>' if next_url else ""
    return (
        form
        + f"<p>{len(records)} record(s) on this page, oldest first.</p>"
        + table(["account", *TIMELINE], [timeline_row(r, base) for r in records], empty="No match.", cls="timeline")
        + pager
    )


# ------------------------------------------------------------------ verify


def verify_page(report: AuditReport, seconds: float) -> str:
    verdict = (
        '<p class="ok" data-verdict="ok">OK: every chain, checkpoint and cross-check holds.</p>'
        if report.ok
        else f'<p class="bad" data-verdict="problems">NOT OK: {len(report.problems)} problem(s) found.</p>'
    )
    facts = [
        ("Accounts", report.accounts),
        ("Records", report.records),
        ("Checkpoints", report.checkpoints),
        ("Records not yet sealed in a checkpoint", report.unsealed),
        ("Key", report.key_id or "none (plain SHA-256; keyed records could not be checked)"),
        ("Broken chains", report.broken_chains),
        ("Took", f"{seconds:.2f} s"),
    ]
    rows = "".join(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in facts)
    problems = table(
        ["kind", "where", "what"],
        [f"<tr><td>{e(p.kind)}</td><td>{e(p.where)}</td><td>{e(p.detail)}</td></tr>" for p in report.problems],
        empty="No problem.",
        cls="problems",
    )
    return f'{verdict}<dl class="summary">{rows}</dl><h2>Problems</h2>{problems}'
