"""Keyed hashes, checkpoints, cursors and the export formats, as pure values."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import pytest

from onboarding_fsm.audit import GENESIS, AuditKey, Cause, KeyMissing, canonical, digest, seal, sign, verify_chain
from onboarding_fsm.checkpoints import Anchor, covered, make, verify
from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.exportcheck import verify_export
from onboarding_fsm.exports import Format, writer
from onboarding_fsm.queries import decode, encode
from onboarding_fsm.states import Source, State, Trigger
from tests.conftest import START

KEY = AuditKey(b"s" * 32)


def chain(n: int = 3, key: AuditKey | None = None, **cause: object) -> list:  # type: ignore[type-arg]
    records, prev = [], GENESIS
    for seq in range(1, n + 1):
        t = seal(
            account_id="acct_1", seq=seq, prev_hash=prev, from_state=None if seq == 1 else State.CREATED,
            to_state=State.CREATED if seq == 1 else State.LINK_ISSUED,
            trigger=Trigger.CREATE if seq == 1 else Trigger.ISSUE_LINK,
            cause=Cause(Source.API, None, "svc", **cause), reason="r", delta=(), at=START + timedelta(seconds=seq),
        )  # fmt: skip
        t = sign(t, key, prev_hash=prev)
        records.append(t)
        prev = t.hash
    return records


def test_v2_hashes_the_request_and_run_ids_and_v1_does_not() -> None:
    [t] = chain(1, request_id="req_1", run_id="sweep_1")
    assert b'"req_1","sweep_1"' in canonical(t)
    assert digest(replace(t, request_id="req_2")) != t.hash
    v1 = replace(t, layout=1)
    assert b"req_1" not in canonical(v1) and canonical(v1).startswith(b'["v1",')


def test_a_keyed_record_needs_its_key() -> None:
    [t] = chain(1, key=KEY)
    assert t.key_id == KEY.key_id and len(KEY.key_id) == 16
    assert "sss" not in repr(KEY)  # the secret never shows in a repr or log line
    assert digest(t, KEY) == t.hash
    with pytest.raises(KeyMissing):
        digest(t)
    with pytest.raises(KeyMissing):
        digest(t, AuditKey(b"o" * 32))
    with pytest.raises(InvalidInput):
        AuditKey(b"short")


def test_a_chain_cannot_fall_back_to_plain_hashes_once_keyed() -> None:
    keyed = chain(3, key=KEY)
    assert verify_chain("acct_1", keyed, keyed[-1].hash, KEY).ok
    plain = sign(replace(keyed[2], key_id=None), None, prev_hash=keyed[1].hash)
    plain = replace(plain, hash=digest(replace(plain, key_id=None)))
    report = verify_chain("acct_1", [*keyed[:2], plain], plain.hash, KEY)
    assert not report.ok and report.broken_at == 3 and "unkeyed" in (report.problem or "")
    assert not verify_chain("acct_1", keyed, keyed[-1].hash).ok  # keyed, checked without the key
    assert verify_chain("acct_1", keyed, None, None, skip_keyed=True).ok  # links only


def test_checkpoint_verification_finds_each_kind_of_damage() -> None:
    a = [Anchor("acct_1", 1, "a" * 64), Anchor("acct_1", 2, "b" * 64)]
    b = [Anchor("acct_2", 1, "c" * 64)]
    one = make(None, a, START, None)
    two = make(one, b, START, None)
    sealed = [(1, covered(a), 2), (2, covered(b), 1)]
    assert list(verify([one, two], sealed, None)) == []
    assert "sequence gap" in str(next(iter(verify([two], sealed[1:], None)))), "the first one deleted"
    changed = [(1, covered([a[0]]), 1), sealed[1]]
    assert "carry its number now" in str(next(iter(verify([one, two], changed, None))))
    edited = [(1, covered([a[0], Anchor("acct_1", 2, "x" * 64)]), 2), sealed[1]]
    assert "changed" in str(next(iter(verify([one, two], edited, None))))
    assert "does not exist" in str(next(iter(verify([one], sealed, None)))), "the newest one deleted"
    keyed = make(two, b, START, KEY)
    plain_after = make(keyed, b, START, None)
    problems = [str(p) for p in verify([one, two, keyed, plain_after], [*sealed, (3, covered(b), 1)], KEY)]
    assert any("unkeyed checkpoint after keyed" in p for p in problems)


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    key = (START, "acct_1", 3)
    assert decode("time", encode("time", key), (type(START), str, int)) == key
    for bad in ("", "%%%", encode("inbox", (START, "evt")), encode("time", ("x", "acct_1", 3))):
        with pytest.raises(InvalidInput):
            decode("time", bad, (type(START), str, int))


@pytest.mark.parametrize("fmt", list(Format))
def test_an_export_keeps_nulls_and_empty_strings_apart(fmt: Format) -> None:
    records = chain(2)
    records[1] = sign(replace(records[1], source_ref="", actor=None), None, prev_hash=records[0].hash)
    out = io.StringIO()
    writer(fmt, out).write(records, [], exported_at=START, whole=False)
    report = verify_export(io.StringIO(out.getvalue()))
    assert report.ok, report.problems
    assert report.transitions == 2 and report.partial
