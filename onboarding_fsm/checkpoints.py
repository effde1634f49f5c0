"""Checkpoints: one global, append-only chain that anchors every account's chain.

A per-account hash chain shows an edited record, but not a chain cut short
with its account row rewound, nor an account erased whole: what is gone
leaves no broken link. So every record is, soon after it is written, sealed
into a checkpoint: the checkpoint's ``covered`` digest is over the
``(account, seq, hash)`` of every record it seals (in code-point order, so
no database collation decides it), and checkpoints chain by hash like
records do. Deleting, truncating or reordering sealed records breaks a
checkpoint's digest; deleting a checkpoint in the middle breaks the next
one's link, and records still naming a deleted one give it away.

What this cannot see, stated: records younger than the last checkpoint are
covered only by their own chain and the inbox/outbox cross-checks; and the
newest checkpoints can be removed together with every trace of what they
sealed (even under a key: removing is not forging). Against that, each new
head is published (outbox ``audit.checkpoint``, a log line) for a witness
outside the database, and ``verify(witnessed=...)`` compares against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from .audit import GENESIS, AuditKey, KeyMissing

CHECKPOINT_KIND = "audit.checkpoint"


@dataclass(frozen=True, slots=True, order=True)
class Anchor:
    """What a checkpoint seals of one record."""

    account_id: str
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    at: datetime
    #: how many records it seals
    records: int
    #: SHA-256 over the sealed anchors, in (account, seq) order (``covered``)
    covered: str
    prev_hash: str
    hash: str
    key_id: str | None = None


def covered(anchors: Iterable[Anchor]) -> str:
    """The digest of sealed anchors, given in (account, seq) order: one
    ``account\\tseq\\thash\\n`` line each, fed to SHA-256 as they stream."""
    h = hashlib.sha256()
    for a in anchors:
        h.update(f"{a.account_id}\t{a.seq}\t{a.hash}\n".encode())
    return h.hexdigest()


class Covering:
    """``covered`` computed incrementally, for a verifier streaming an export."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.count = 0

    def add(self, anchor: Anchor) -> None:
        self._h.update(f"{anchor.account_id}\t{anchor.seq}\t{anchor.hash}\n".encode())
        self.count += 1

    def digest(self) -> str:
        return self._h.hexdigest()


def canonical(cp: Checkpoint) -> bytes:
    body = ["c1", cp.seq, cp.at.isoformat(timespec="microseconds"), cp.records, cp.covered, cp.prev_hash]
    return json.dumps(body, separators=(",", ":")).encode()


def digest(cp: Checkpoint, key: AuditKey | None = None) -> str:
    if cp.key_id is None:
        return hashlib.sha256(canonical(cp)).hexdigest()
    if key is None or key.key_id != cp.key_id:
        raise KeyMissing(f"checkpoint {cp.seq} is keyed with {cp.key_id}")
    return key.mac(canonical(cp))


def make(previous: Checkpoint | None, anchors: list[Anchor], at: datetime, key: AuditKey | None) -> Checkpoint:
    """The checkpoint after ``previous`` sealing ``anchors``."""
    ordered = sorted(anchors)
    draft = Checkpoint(
        seq=(previous.seq if previous else 0) + 1,
        at=at,
        records=len(ordered),
        covered=covered(ordered),
        prev_hash=previous.hash if previous else GENESIS,
        hash="",
        key_id=key.key_id if key is not None else None,
    )
    return replace(draft, hash=digest(draft, key))


def announcement(cp: Checkpoint) -> dict[str, object]:
    """The outbox message publishing a new head, for a witness outside the database."""
    return {
        "type": CHECKPOINT_KIND,
        "seq": cp.seq,
        "at": cp.at.isoformat(timespec="microseconds"),
        "records": cp.records,
        "hash": cp.hash,
        "key_id": cp.key_id,
    }


@dataclass(frozen=True, slots=True)
class Problem:
    """One piece of evidence of tampering (or of a gap in the evidence)."""

    kind: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AuditEvidence:
    """The store's side of a verification, beyond the chains themselves."""

    unsealed: int = 0
    #: unsealed records with plain hashes (suspect once a key is in use)
    unsealed_unkeyed: int = 0
    #: cross-check disagreements (at most the asked limit)
    problems: tuple[Problem, ...] = ()


def verify(
    checkpoints: Iterable[Checkpoint],
    sealed: Iterable[tuple[int, str, int]],
    key: AuditKey | None,
    *,
    skip_keyed: bool = False,
    witnessed: Mapping[int, str] | None = None,
) -> Iterator[Problem]:
    """Check the checkpoint chain against what each one seals now.

    ``sealed`` gives, per checkpoint seq, the digest and count recomputed
    from the records that carry its number today. ``witnessed`` are heads
    published earlier and kept outside (``seq -> hash``): the one defence
    against the newest checkpoints being removed together with what they
    sealed. ``skip_keyed``: without the key, keyed checkpoints are checked
    for links and coverage only.
    """
    recomputed = {seq: (digest_, count) for seq, digest_, count in sealed}
    seen: dict[int, str] = {}
    prev = GENESIS
    keyed = False
    expected = 1
    for cp in checkpoints:
        seen[cp.seq] = cp.hash
        where = f"checkpoint {cp.seq}"
        if cp.seq != expected:
            yield Problem("checkpoint", where, f"sequence gap: expected {expected} (checkpoints deleted)")
        if cp.prev_hash != prev:
            yield Problem("checkpoint", where, "previous-hash link broken")
        if keyed and cp.key_id is None:
            yield Problem("checkpoint", where, "unkeyed checkpoint after keyed ones (re-hashed without the key?)")
        try:
            if not (skip_keyed and key is None and cp.key_id is not None) and digest(cp, key) != cp.hash:
                yield Problem("checkpoint", where, "content does not match its hash")
        except KeyMissing:
            yield Problem("checkpoint", where, f"keyed with {cp.key_id}, which is not the key given")
        now_digest, now_count = recomputed.pop(cp.seq, (covered(()), 0))
        if (now_digest, now_count) != (cp.covered, cp.records):
            yield Problem(
                "checkpoint",
                where,
                f"sealed {cp.records} record(s); {now_count} carry its number now, and their hashes differ"
                if now_count != cp.records
                else "a sealed record was changed (its hash is not the one sealed)",
            )
        keyed = keyed or cp.key_id is not None
        prev = cp.hash
        expected = cp.seq + 1
    for seq in sorted(recomputed):
        yield Problem("checkpoint", f"checkpoint {seq}", "records name a checkpoint that does not exist")
    for seq, hash_ in sorted((witnessed or {}).items()):
        if seen.get(seq) != hash_:
            what = "is gone (removed with what it sealed?)" if seq not in seen else "differs from the witnessed head"
            yield Problem("witness", f"checkpoint {seq}", what)
