"""The auditor's calls over 10^6 transitions (embedded default: SQLite).

Seeds N accounts with ten chained, hashed records each (``seed_audit_trail``),
then times, each with a baseline measured in the same run:

* a range query, "who entered past_due in this week", streamed through
  ``engine.audit.stream`` — against the same SELECT on the same index with
  no records built (the floor);
* one keyset page at the start and at the end of the trail (a cursor page
  costs the same anywhere);
* a streamed export of the whole trail to a file, and the standalone
  verifier reading it back — against a bare streamed SELECT of every row;
* memory: the export's peak RSS in a fresh process, for a tenth of the trail
  and for all of it (flat when the two are close).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from adapters.sqlalchemy_store import SqlStore
from adapters.sqlalchemy_store.seeding import seed_audit_trail
from onboarding_fsm import Settings, State, build_engine
from onboarding_fsm.exportcheck import verify_export
from onboarding_fsm.queries import TransitionQuery

from .common import Figure, report

START = datetime(2026, 1, 1, tzinfo=UTC)
SPACING = 30  # seconds between two accounts' births


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main(accounts: int = 100_000, rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'audit.sqlite3'}"
        store = SqlStore.from_url(url)
        store.migrate()
        seed_s, records = _timed(lambda: seed_audit_trail(store.engine, accounts, start=START, spacing_s=SPACING))
        engine = build_engine(Settings(database_url=url), store=store)
        print(f"\naudit trail: {records:,} records of {accounts:,} accounts seeded in {seed_s:.1f} s")
        _range(engine, store, accounts, rounds)
        _export(engine, store, url, Path(tmp), records, rounds)
        engine.close()


def _range(engine: Any, store: SqlStore, accounts: int, rounds: int) -> None:
    middle = START + timedelta(seconds=accounts * SPACING // 2)
    week = TransitionQuery(to_state=State.PAST_DUE, since=middle, until=middle + timedelta(days=7))
    t = sa.table("ofsm_transitions", sa.column("account_id"), sa.column("seq"), sa.column("at"), sa.column("to_state"))
    raw = sa.select(t.c.account_id, t.c.seq).where(
        t.c.at >= week.since, t.c.at < week.until, t.c.to_state == "past_due"
    )
    ours, floor, found = [], [], 0
    for _ in range(rounds):
        seconds, found = _timed(lambda: sum(1 for _ in engine.audit.stream(week)))
        ours.append(seconds * 1e3)
        with store.engine.connect() as conn:
            seconds, _ = _timed(lambda: conn.execute(raw).all())
        floor.append(seconds * 1e3)
    first = [_timed(lambda: engine.audit.transitions(limit=100))[0] * 1e6 for _ in range(rounds)]
    late = TransitionQuery(since=START + timedelta(seconds=accounts * SPACING))
    last = [_timed(lambda: engine.audit.transitions(late, limit=100))[0] * 1e6 for _ in range(rounds)]
    report(
        f"range query: entered past_due within one week ({found:,} of them)",
        [
            Figure("engine.audit.stream (Transition values)", "ms", ours),
            Figure("same SELECT on the same index, bare rows", "ms", floor),
            Figure("one 100-record page at the trail's start", "us", first),
            Figure("one 100-record page at the trail's end", "us", last),
        ],
        ratio=(Figure("bare", "ms", floor), Figure("engine", "ms", ours)),
    )


def _export_once(engine: Any, out: Path) -> float:
    with out.open("w", encoding="utf-8") as f:
        seconds, _ = _timed(lambda: engine.audit.export(f))
    return seconds


def _verify_once(out: Path) -> float:
    with out.open(encoding="utf-8") as f:
        seconds, result = _timed(lambda: verify_export(f))
    assert result.ok, result.problems
    return seconds


def _bare_once(store: SqlStore) -> float:
    with store.engine.connect() as conn:
        stream = conn.execution_options(stream_results=True, yield_per=5000)
        sql = "SELECT * FROM ofsm_transitions ORDER BY account_id, seq"
        seconds, _ = _timed(lambda: sum(1 for _ in stream.exec_driver_sql(sql)))
    return seconds


def _export(engine: Any, store: SqlStore, url: str, tmp: Path, records: int, rounds: int) -> None:
    out = tmp / "trail.jsonl"
    exported, verified, bare = [], [], []
    for _ in range(2 if records < 500_000 else 1):  # at 10^6 one export is long enough to time
        exported.append(records / _export_once(engine, out))
        verified.append(records / _verify_once(out))
        bare.append(records / _bare_once(store))
    size = out.stat().st_size
    tenth = START + timedelta(seconds=(records // 10) // 10 * SPACING)
    floor = _child_rss(url, tmp, START.isoformat())  # the same process exporting nothing
    small, whole = _child_rss(url, tmp, tenth.isoformat()), _child_rss(url, tmp, None)
    report(
        f"streamed export of {records:,} records ({size / 1e6:,.0f} MB of JSON Lines)",
        [
            Figure("engine.audit.export to a file", "records/s", exported),
            Figure("exportcheck.verify_export of that file", "records/s", verified),
            Figure("bare streamed SELECT of every row", "rows/s", bare),
            Figure("peak RSS exporting nothing (imports, engine: the floor)", "MB", [floor[0]]),
            Figure(f"peak RSS exporting the first tenth ({small[1]:,} records)", "MB", [small[0]]),
            Figure(f"peak RSS exporting all ({whole[1]:,} records)", "MB", [whole[0]]),
        ],
        ratio=(Figure("export", "r/s", exported), Figure("bare", "r/s", bare)),
    )
    print(
        f"  memory above the floor: a tenth {small[0] - floor[0]:+.1f} MB, all {whole[0] - floor[0]:+.1f} MB "
        f"(flat: ten times the records, the same memory)"
    )


def _child_rss(url: str, tmp: Path, until: str | None) -> tuple[float, int]:
    """Peak RSS (MB) of a fresh process that exports (part of) the trail."""
    args = [sys.executable, "-m", "bench.audit", "child", url, str(tmp / "child.jsonl")]
    done = subprocess.run([*args, *([until] if until else [])], capture_output=True, text=True, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["rss_mb"], answer["records"]


def _child(url: str, path: str, until: str | None) -> None:
    engine = build_engine(Settings(database_url=url))
    query = TransitionQuery(since=START, until=datetime.fromisoformat(until)) if until else None
    with open(path, "w", encoding="utf-8") as f:
        summary = engine.audit.export(f, query=query)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_mb": round(rss_kb / 1024, 1), "records": summary.transitions}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        _child(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
