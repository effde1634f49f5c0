"""Platforms upgrade in place: a database populated by an earlier revision is
upgraded without losing, changing or re-hashing a record (both backends)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from adapters.sqlalchemy_store import SqlStore
from adapters.sqlalchemy_store.schemas import temporary_schema
from adapters.sqlalchemy_store.store import MIGRATIONS
from adapters.sqlalchemy_store.tables import WAITING_ROWS, accounts, metadata, timers, transitions
from adapters.sqlalchemy_store.timeconv import read_dt
from onboarding_fsm.attention import WAITING, AttentionKind, AttentionQuery, marks
from onboarding_fsm.audit import GENESIS, Cause, Transition, delta_to_dict, digest, seal, verify_chain
from onboarding_fsm.snapshot import AccountSnapshot, Requirements, snapshot_to_dict
from onboarding_fsm.states import Source, State, Trigger
from onboarding_fsm.timers import ClaimedTimer, Timer, TimerBacklog, TimerKind
from tests.conftest import START, postgres_url

DUE = START + timedelta(days=3)
FUTURE = START + timedelta(days=60)
SNAPSHOT = AccountSnapshot(
    id="acct_old",
    country="US",
    requirements=Requirements(
        currently_due=("individual.dob.day",),
        eventually_due=("individual.dob.day", "individual.id_number"),
        current_deadline=DUE,
    ),
    future_requirements=Requirements(
        currently_due=("company.tax_id",), eventually_due=("company.tax_id", "company.phone"), current_deadline=FUTURE
    ),
    platform_ref="seller-old",
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: these tests replay the revisions
    themselves (``any_db_url`` starts SQLite at head, from a template)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(fresh_db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.from_url(fresh_db_url)
    yield s
    s.close()


def upgrade(store: SqlStore, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


#: the first record's hash as 0.3 computed it (layout v1), pinned: an upgrade never re-hashes
V1_FIRST_HASH = "4c7c84cb4a29a9f9bc1cb5e175240f7017f074e2080b9898e5f9f45c266499d9"


def legacy(record: Transition, prev_hash: str) -> Transition:
    """``record`` as releases before 0004 wrote it: layout v1, plain SHA-256."""
    v1 = replace(record, layout=1, prev_hash=prev_hash, request_id=None, run_id=None)
    return replace(v1, hash=digest(v1))


def chain() -> list:  # type: ignore[type-arg]
    first = seal(
        account_id="acct_old", seq=1, prev_hash=GENESIS, from_state=None, to_state=State.CREATED,
        trigger=Trigger.CREATE, cause=Cause(Source.API, None, "svc"), reason="created", delta=(), at=START,
    )  # fmt: skip
    second = seal(
        account_id="acct_old", seq=2, prev_hash=first.hash, from_state=State.CREATED, to_state=State.LINK_ISSUED,
        trigger=Trigger.ISSUE_LINK, cause=Cause(Source.API, None, "svc"), reason="link",
        delta=(), at=START + timedelta(seconds=1),
    )  # fmt: skip
    first = legacy(first, GENESIS)
    assert first.hash == V1_FIRST_HASH
    return [first, legacy(second, first.hash)]


def populate(store: SqlStore, revision: str = "0001") -> list:  # type: ignore[type-arg]
    """Rows as the schema at ``revision`` holds them (only its columns)."""
    timer_extra = {"wake_at": DUE, "attempts": 0} if revision >= "0002" else {}
    records = chain()
    since = {"state_since": records[-1].at} if revision >= "0005" else {}  # as 0.4 writes it
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(accounts).values(
                stripe_account_id="acct_old", platform_ref="seller-old", state="link_issued", reason="link",
                version=2, livemode=False, country="US", requested_capabilities=["card_payments"],
                snapshot=snapshot_to_dict(SNAPSHOT), charges_enabled=False, payouts_enabled=False,
                details_submitted=False, deauthorized=False, watermark=START, link_issued_at=START,
                audit_seq=2, audit_head=records[-1].hash, created_at=START, updated_at=START, synced_at=START,
                **since,
            )
        )  # fmt: skip
        for r in records:
            conn.execute(
                sa.insert(transitions).values(
                    account_id=r.account_id, seq=r.seq, from_state=r.from_state.value if r.from_state else None,
                    to_state=r.to_state.value, trigger=r.trigger.value, source=r.source.value,
                    source_ref=r.source_ref, actor=r.actor, reason=r.reason, delta=delta_to_dict(r.delta),
                    at=r.at, stripe_time=r.stripe_time, prev_hash=r.prev_hash, hash=r.hash,
                )
            )  # fmt: skip
        conn.execute(
            sa.insert(timers).values(account_id="acct_old", kind="deadline", due_at=DUE, fired_at=None, **timer_extra)
        )
        late = {"wake_at": START, "attempts": 0} if timer_extra else {}
        conn.execute(
            sa.insert(timers).values(account_id="acct_old", kind="reminder", due_at=START, fired_at=START, **late)
        )
    return records


@pytest.mark.parametrize("revision", ["0001", "0002", "0003", "0004", "0005"])
def test_an_earlier_revision_upgrades_to_head_keeping_accounts_audit_and_timers(store: SqlStore, revision: str) -> None:
    upgrade(store, revision)
    records = populate(store, revision)
    store.migrate()  # to head, as `onboarding-fsm db upgrade` does

    account = store.get("acct_old")
    assert account is not None
    assert (account.state, account.version, account.audit_head, account.watermark) == (
        State.LINK_ISSUED, 2, records[-1].hash, START,
    )  # fmt: skip
    assert account.fetched_at is None and account.inaccessible_since is None  # not known for older rows
    assert account.state_since == records[-1].at  # 0005 backfills it from the trail
    assert marked(store) == {"acct_old": (1, 2, FUTURE)}  # 0006 from the stored snapshot
    history = store.history("acct_old")
    assert history == records  # every field, hashes untouched
    assert verify_chain("acct_old", history, account.audit_head).ok
    deadline = Timer(DUE, "acct_old", TimerKind.DEADLINE)
    assert dict(store.timers("acct_old")) == {deadline: None, Timer(START, "acct_old", TimerKind.REMINDER): START}
    # an upgraded timer wakes at its due time, with no attempts yet
    assert store.timer_backlog(DUE) == TimerBacklog(due=1, retrying=0)
    with store.write() as tx:
        assert tx.claim_due_timer(DUE, lease_until=DUE + timedelta(minutes=1)) == ClaimedTimer(deadline, account, 0)


def test_head_downgrades_to_0001_and_back(store: SqlStore) -> None:
    upgrade(store, "0001")
    populate(store)
    store.migrate()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    store.migrate()
    assert len(store.history("acct_old")) == 2


def test_an_upgraded_trail_is_sealed_as_it_was_and_grows_in_the_new_layout(store: SqlStore) -> None:
    """0003 -> head: the old v1 records keep their hashes, the first checkpoint
    seals them as they are, a v2 record appends to the same chain, and the
    whole trail verifies."""
    from onboarding_fsm.checkpoints import make, verify

    upgrade(store, "0003")
    records = populate(store, "0003")
    store.migrate()
    sealed = store.seal_checkpoint(lambda last, anchors: make(last, anchors, START, None), limit=100, keyed_only=False)
    assert sealed is not None and sealed.records == 2
    assert [t.hash for t in store.history("acct_old")] == [r.hash for r in records]
    assert list(verify(store.checkpoints(), store.sealed(1), None)) == []


def marked(store: SqlStore) -> dict[str, tuple[int, int, datetime | None]]:
    """The attention columns (0006) per account."""
    a = accounts.c
    query = sa.select(a.stripe_account_id, a.eventually_due_left, a.future_due, a.future_deadline)
    with store.engine.connect() as conn:
        return {r[0]: (r[1], r[2], read_dt(r[3])) for r in conn.execute(query)}


def test_0006_marks_existing_accounts_from_their_stored_snapshots(store: SqlStore) -> None:
    """Every row is backfilled as a fresh write would mark it, whatever its
    snapshot holds (an old API version's has no future_requirements) and
    whatever its state (a disabled one is marked, not listed); a snapshot no
    engine wrote marks nothing; the audit trail stays as it was; the
    attention queries see the rows at once."""
    upgrade(store, "0005")
    records = populate(store, "0005")
    plain = AccountSnapshot(id="acct_plain", requirements=Requirements(eventually_due=("x",), currently_due=("x",)))
    legacy_shape = snapshot_to_dict(AccountSnapshot(id="acct_legacy", requirements=Requirements(eventually_due=("y",))))
    del legacy_shape["future_requirements"]
    undated = AccountSnapshot(id="acct_undated", future_requirements=Requirements(eventually_due=("z",)))
    gone = AccountSnapshot(id="acct_gone", future_requirements=Requirements(currently_due=("z",), current_deadline=DUE))
    unreadable = snapshot_to_dict(undated) | {"id": "acct_unreadable"}
    unreadable["future_requirements"]["current_deadline"] = "soon"
    with store.engine.begin() as conn:
        for account_id, state, snapshot in (
            ("acct_plain", "verified", snapshot_to_dict(plain)),
            ("acct_legacy", "verified", legacy_shape),
            ("acct_undated", "verified", snapshot_to_dict(undated)),
            ("acct_gone", "disabled", snapshot_to_dict(gone)),  # detached: marked, never listed
            ("acct_unreadable", "verified", unreadable),  # no engine wrote it: marks nothing
            ("acct_odd", "verified", {"requirements": {"eventually_due": "x"}}),
        ):
            conn.execute(
                sa.insert(accounts).values(
                    stripe_account_id=account_id, platform_ref=f"ref-{account_id}", state=state, reason="r",
                    version=1, livemode=False, requested_capabilities=[], snapshot=snapshot, charges_enabled=True,
                    payouts_enabled=True, details_submitted=True, deauthorized=False, audit_seq=0,
                    audit_head="0" * 64, created_at=START, updated_at=START, synced_at=START, state_since=START,
                )
            )  # fmt: skip
    store.migrate()
    assert marked(store) == {
        "acct_old": (1, 2, FUTURE),
        "acct_plain": (0, 0, None),
        "acct_legacy": (1, 0, None),
        "acct_undated": (0, 1, None),
        "acct_gone": (0, 1, DUE),
        "acct_unreadable": (0, 0, None),
        "acct_odd": (0, 0, None),
    }
    backfilled = marked(store)
    for account_id in ("acct_old", "acct_plain", "acct_legacy", "acct_undated", "acct_gone"):
        loaded = store.get(account_id)  # the rule 0006 froze is (still) the one a fresh write applies
        assert loaded is not None
        fresh = marks(loaded.snapshot)
        assert backfilled[account_id] == (fresh.eventually_due_left, fresh.future_due, fresh.future_deadline)
    assert store.history("acct_old") == records
    later = START + timedelta(days=30)
    query = AttentionQuery(stuck_before=later, overdue_before=later)
    future = store.needing_attention(AttentionKind.FUTURE_REQUIREMENTS, query)
    assert [(f.account_id, f.count, f.at) for f in future] == [("acct_old", 2, FUTURE), ("acct_undated", 1, None)]
    assert [f.account_id for f in store.needing_attention(AttentionKind.EVENTUALLY_DUE, query)] == ["acct_legacy"]
    assert [f.account_id for f in store.needing_attention(AttentionKind.STUCK, query)] == ["acct_old"]
    overdue = store.needing_attention(AttentionKind.TIMER_OVERDUE, query)
    assert [(f.account_id, f.timer, f.at) for f in overdue] == [("acct_old", TimerKind.DEADLINE, DUE)]


def index_definitions(engine: sa.Engine) -> dict[str, str]:
    """Every ``ix_ofsm_*`` index as the database itself states it (its WHERE
    included, which Alembic's ``compare_metadata`` does not compare), schema
    names and spacing normalised."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'").all()
            prefix = ""
        else:
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            ).all()
            prefix = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one()) + "."
    return {
        name: re.sub(r"\s+", " ", sql.replace(prefix, "") if prefix else sql).strip()
        for name, sql in rows
        if name.startswith("ix_ofsm_")
    }


def test_the_migrated_indexes_are_the_tables_modules_predicates_included(store: SqlStore, tmp_path: Path) -> None:
    """A partial index whose WHERE differs between the migrations and
    ``tables`` would pass ``compare_metadata`` and then fail every query that
    names it (SQLite's INDEXED BY) or stop using it (PostgreSQL)."""
    store.migrate()
    migrated = index_definitions(store.engine)
    if store.engine.dialect.name == "sqlite":
        fresh = sa.create_engine(f"sqlite:///{tmp_path / 'create_all.sqlite3'}")
        metadata.create_all(fresh)
        created = index_definitions(fresh)
        fresh.dispose()
    else:
        with temporary_schema(postgres_url(), "ofsm_fresh_") as url:
            fresh = sa.create_engine(url)
            metadata.create_all(fresh)
            created = index_definitions(fresh)
            fresh.dispose()
    assert "ix_ofsm_accounts_future" in created and "WHERE" in created["ix_ofsm_accounts_future"]
    assert migrated == created


def test_the_frozen_waiting_predicate_names_the_cores_waiting_states() -> None:
    """``tables`` and 0006 spell the waiting states out; a change to
    ``attention.WAITING`` needs a revision that rebuilds the index."""
    assert set(re.findall(r"'([a-z_]+)'", WAITING_ROWS.text)) == {s.value for s in WAITING}
