"""Webhook ingestion end to end on a SQLite file, against plain SQL.

Engine: verify signature, parse, dedupe in the inbox, classify, fire the
transition on the shared machine, persist account + audit + outbox + timers.
Baseline, same run, same schema and pragmas: the same writes (inbox insert,
account update with version check, audit insert — the same row contents the
engine writes, computed ahead and untimed) in one transaction with the sqlite3
module — no engine, no verification, no parsing, no hashing, no outbox.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.simulator import Delivery
from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock, Settings
from onboarding_fsm.bootstrap import build_sandbox
from onboarding_fsm.engine import Engine
from onboarding_fsm.redact import strip_event
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from onboarding_fsm.snapshot import parse_account, snapshot_to_dict

from .common import Figure, rate, report

START = datetime(2026, 1, 1, tzinfo=UTC)
VERIFIED = {"currently_due": [], "eventually_due": [], "past_due": [], "pending_verification": [], "errors": [],
            "current_deadline": None, "disabled_reason": None}  # fmt: skip
PAST_DUE = {**VERIFIED, "currently_due": ["individual.id_number"], "past_due": ["individual.id_number"],
            "disabled_reason": "requirements.past_due"}  # fmt: skip


def build(directory: Path, accounts: int, synchronous: str) -> tuple[Engine, FakeClock, list[dict[str, Any]]]:
    settings = Settings(database_url=f"sqlite:///{directory / 'engine.sqlite3'}", sqlite_synchronous=synchronous)  # type: ignore[arg-type]
    box = build_sandbox(settings, clock=FakeClock(START), delivery=Delivery(hold=True))
    engine, sim, clock = box.engine, box.sim, box.clock
    templates = []
    for n in range(accounts):
        acct = engine.create_account(f"bench-{n}", "US", ["card_payments", "transfers"]).stripe_account_id
        url = engine.issue_link(acct).url
        sim.visit(url).complete()  # the account JSON now carries identity data, as Stripe's would
        templates.append(sim.account_json(acct))
    return engine, clock, templates


def events(templates: list[dict[str, Any]], count: int, first_created: int) -> list[dict[str, Any]]:
    """Events that each move an account (verified <-> past_due), newest last."""
    out = []
    for i in range(count):
        obj = dict(templates[i % len(templates)])
        obj["requirements"] = PAST_DUE if (i // len(templates)) % 2 == 0 else VERIFIED
        obj["details_submitted"] = True
        out.append({"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": "account.updated",
                    "account": obj["id"], "api_version": "2026-10-28.endive", "created": first_created + i,
                    "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
                    "data": {"object": obj, "previous_attributes": {k: v for k, v in obj.items() if k != "id"}}})  # fmt: skip
    return out


def baseline_db(directory: Path, engine_db: Path, synchronous: str) -> sqlite3.Connection:
    path = directory / "baseline.sqlite3"
    source = sqlite3.connect(engine_db)
    target = sqlite3.connect(path)
    source.backup(target)
    source.close()
    target.isolation_level = None
    target.execute("PRAGMA journal_mode=WAL")
    target.execute(f"PRAGMA synchronous={synchronous}")
    return target


def baseline_rows(conn: sqlite3.Connection, batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows the engine writes for these events, computed ahead (untimed):
    the identity-stripped inbox payload, the normalized snapshot, an audit row."""
    versions = dict(conn.execute("SELECT stripe_account_id, version FROM ofsm_accounts"))
    seqs = dict(conn.execute("SELECT account_id, max(seq) FROM ofsm_transitions GROUP BY account_id"))
    rows = []
    now = "2026-01-02 00:00:00.000000"
    for e in batch:
        acct = e["account"]
        version, seq = versions[acct], seqs[acct] + 1
        versions[acct], seqs[acct] = version + 1, seq
        payload = json.dumps(strip_event(e), separators=(",", ":"))
        snapshot = json.dumps(snapshot_to_dict(parse_account(e["data"]["object"])), separators=(",", ":"))
        delta = json.dumps({"past_due": {"added": ["individual.id_number"], "removed": []}}, separators=(",", ":"))
        rows.append((
            (e["id"], e["type"], acct, now, 0, now, "applied", None, payload),
            ("past_due", "past_due=1;disabled_reason=requirements.past_due", version + 1, snapshot, 1, 1, 1, now, seq, "1" * 64, now, now, acct, version),
            (acct, seq, "verified", "past_due", "sync", "webhook", e["id"], "stripe", "past_due=1", delta, now, now, "0" * 64, "1" * 64),
        ))  # fmt: skip
    return rows


def run_baseline(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
    for inbox, account, audit in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO ofsm_webhook_events (event_id, type, account_id, created, livemode, received_at, "
            "outcome, detail, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            inbox,
        )
        cur = conn.execute(
            "UPDATE ofsm_accounts SET state = ?, reason = ?, version = ?, snapshot = ?, charges_enabled = ?, "
            "payouts_enabled = ?, details_submitted = ?, watermark = ?, audit_seq = ?, audit_head = ?, "
            "updated_at = ?, synced_at = ? WHERE stripe_account_id = ? AND version = ?",
            account,
        )
        assert cur.rowcount == 1
        conn.execute("INSERT INTO ofsm_transitions (account_id, seq, from_state, to_state, trigger, source, source_ref, "
                     "actor, reason, delta, at, stripe_time, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", audit)  # fmt: skip
        conn.execute("COMMIT")
    return len(rows)


def main(*, accounts: int = 200, per_round: int = 1000, rounds: int = 5, synchronous: str = "FULL") -> None:
    directory = Path(tempfile.mkdtemp(prefix="ofsm-bench-"))
    engine, clock, templates = build(directory, accounts, synchronous)
    clock.set(START + timedelta(days=1))
    engine_db = directory / "engine.sqlite3"
    conn = baseline_db(directory, engine_db, synchronous)
    size = len(json.dumps(events(templates, 1, 0)[0]))
    ours, base = Figure("engine.ingest_webhook", "events/s", []), Figure("plain SQL, same writes", "events/s", [])
    created = int(START.timestamp()) + 1  # newer than anything the accounts have seen
    transitions = 0
    for _ in range(rounds):
        batch = events(templates, per_round, created)
        created += per_round
        now = int(clock.now().timestamp())
        signed = [(body, sign(body, SIMULATOR_WEBHOOK_SECRET, now)) for body in (json.dumps(e).encode() for e in batch)]
        rows = baseline_rows(conn, batch)

        def ingest(signed: list[tuple[bytes, str]] = signed) -> int:
            nonlocal transitions
            for body, header in signed:
                transitions += engine.ingest_webhook(body, header).transition is not None
            return len(signed)

        ours.samples.append(rate(ingest))
        base.samples.append(rate(lambda rows=rows: run_baseline(conn, rows)))
    report(
        f"Webhook ingestion on a SQLite file (synchronous={synchronous}, {accounts} accounts, "
        f"{rounds}x{per_round} events of {size / 1024:.1f} KB, {transitions} transitions)",
        [ours, base],
        ratio=(ours, base),
        goal=0.6,
    )
    engine.close()
    conn.close()


if __name__ == "__main__":
    main()
