"""The command line, run in-process through its entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.cli import main
from onboarding_fsm import Settings, Source, build_engine


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_demo_runs_every_scenario_and_says_where_the_data_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.sqlite3"
    code, out = run(capsys, "demo", "--database", f"sqlite:///{db}")
    assert code == 0, out
    for n in range(1, 15):
        assert f"[{n}] " in out
    assert "final=verified" in out and "final=disabled" in out
    # past_due learnt by the deadline timer's own fetch, no webhook
    assert "verified -> past_due            sync        scheduler timer:future_deadline@" in out
    assert str(db) in out
    assert "Audit trail verified: 16 chain(s), " in out and "; 0 problem(s)." in out
    # every transition in the demo database carries a cause: a reference (event,
    # timer, Stripe request) or an actor
    engine = build_engine(Settings(database_url=f"sqlite:///{db}"))
    records = list(engine.audit.stream())
    assert len(records) > 40
    assert [t for t in records if not (t.source_ref or t.request_id or t.actor)] == []
    assert all(t.request_id for t in records if t.source in (Source.API, Source.RETURN, Source.REFRESH))
    assert "onboarding-fsm history acct_" in out
    # issue 11: items 1, 2, 4 and 7 are shown
    assert "refused after the first link: individual (IdentityLocked)" in out
    assert "verified -> returned_incomplete update      api - ops" in out
    assert "future_requirements after the include link: []" in out
    assert "no worker sweeping:" in out and "timer_overdue       acct_" in out and "stuck               acct_" in out


def test_history_accounts_and_audit_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", f"sqlite:///{db}")
    assert run(capsys, "demo")[0] == 0
    code, listing = run(capsys, "accounts")
    assert code == 0 and listing.count("acct_") == 16
    account = listing.split()[0]
    code, history = run(capsys, "history", account)
    assert code == 0 and "created" in history and "create" in history
    code, as_json = run(capsys, "history", account, "--json")
    assert code == 0 and as_json.startswith("{")
    code, verified = run(capsys, "audit", "verify")
    assert code == 0 and verified.startswith("16 account chain(s), ") and verified.endswith(" 0 problem(s)\n")
    code, fired = run(capsys, "check-deadlines", "--operator", "alice")
    assert code == 0 and "transition(s) fired (run sweep_" in fired and "operator:alice" in fired


def test_audit_verify_fails_on_tampering(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    db = tmp_path / "t.sqlite3"
    url = f"sqlite:///{db}"
    run(capsys, "demo", "--database", url)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER ofsm_transitions_no_delete")
        conn.execute(
            "DELETE FROM ofsm_transitions WHERE seq = 2 AND rowid = (SELECT min(rowid) FROM ofsm_transitions WHERE seq = 2)"
        )
    code, out = main(["--config", str(write_config(tmp_path, url)), "audit", "verify"]), capsys.readouterr().out
    assert code == 1 and "PROBLEM chain acct_" in out and "sequence gap" in out


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'database_url = "{url}"\n', encoding="utf-8")
    return path


def test_db_upgrade_and_diagram_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "db", "upgrade", "--database", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert code == 0 and "schema up to date" in out
    committed = Path(__file__).resolve().parents[2] / "diagrams"
    assert run(capsys, "diagram", "--check", "--out", str(committed))[0] == 0
    stale = tmp_path / "diagrams"
    shutil.copytree(committed, stale)
    (stale / "onboarding.mmd").write_text("stateDiagram-v2\n", encoding="utf-8")
    assert run(capsys, "diagram", "--check", "--out", str(stale))[0] == 1
    assert run(capsys, "diagram", "--out", str(stale))[0] == 0
    assert run(capsys, "diagram", "--check", "--out", str(stale))[0] == 0


def test_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "history", "not-an-account")
    assert code == 2 and "error:" in out
    code, out = run(capsys, "--config", str(tmp_path / "missing.toml"), "accounts")
    assert code == 2 and "not found" in out


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1:1/unreachable", 2),  # nothing listens on port 1
        ("sqlite:///{tmp}/not-a-database.sqlite3", 1),
        ("nosuchdialect://x", 1),
    ],
)
def test_a_database_that_cannot_be_used_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, code: int
) -> None:
    """Issue 9: an operator sees one line saying why, and a non-zero exit; never a traceback."""
    (tmp_path / "not-a-database.sqlite3").write_text("plain text, not SQLite\n" * 100)
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", url.format(tmp=tmp_path))
    for argv in (["accounts"], ["db", "upgrade"], ["worker", "--until-idle"]):
        status, out = run(capsys, *argv)
        assert status == code, out
        assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out, out
    status, out = run(capsys, "-v", "accounts")
    assert status == code and "Traceback" in out, "-v keeps the traceback for a bug report"


def test_a_refused_setting_is_one_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONBOARDING_FSM_WEBHOOK_SECRET", "whsec_misspelt")
    status, out = run(capsys, "accounts")
    assert status == 2 and out.count("\n") == 1 and "did you mean ONBOARDING_FSM_WEBHOOK_SECRETS" in out, out


def stdout(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Like ``run``, stdout only (counts and cursors go to stderr)."""
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_the_auditors_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each question is one command: across accounts by time and state, as of an
    instant, the inbox, and an export that verifies on its own."""
    import json

    db = tmp_path / "audit.sqlite3"
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", f"sqlite:///{db}")
    assert run(capsys, "demo")[0] == 0
    code, out = stdout(
        capsys, "audit", "transitions", "--to", "past_due", "--since", "2000-01-01T00:00:00+00:00", "--all"
    )
    assert code == 0 and out.count("-> past_due") >= 1 and all("past_due" in line for line in out.splitlines())
    code, out = stdout(capsys, "audit", "transitions", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2
    code, out = stdout(capsys, "audit", "transitions", "--trigger", "deadline", "--json", "--all")
    assert code == 0 and all(json.loads(line)["trigger"] == "deadline" for line in out.splitlines())
    code, out = stdout(capsys, "audit", "state-at", "2100-01-01T00:00:00+00:00")
    assert code == 0 and out.count("acct_") == 16
    code, out = stdout(capsys, "audit", "state-at", "2000-01-01T00:00:00+00:00")
    assert code == 0 and out == ""  # nothing existed then
    code, out = stdout(capsys, "inbox", "--outcome", "applied", "--limit", "500")
    assert code == 0 and out and all(" applied " in line for line in out.splitlines())
    code, out = run(capsys, "audit", "checkpoint")
    assert code == 0 and "nothing to seal" in out  # the demo sealed everything
    for fmt in ("jsonl", "csv"):
        export = tmp_path / f"trail.{fmt}"
        assert run(capsys, "audit", "export", "--format", fmt, "-o", str(export))[0] == 0
        code, out = run(capsys, "audit", "verify-export", str(export))
        assert code == 0 and "whole trail" in out and "0 problem(s)" in out
        lines = export.read_text("utf-8").splitlines(keepends=True)
        (tmp_path / "cut").write_text("".join(lines[:-1]), "utf-8")
        code, out = run(capsys, "audit", "verify-export", str(tmp_path / "cut"))
        assert code == 1 and "cut short" in out
    code, _ = stdout(capsys, "audit", "transitions", "--since", "yesterday")
    assert code == 2  # a clear error, nothing done
    code, _ = stdout(capsys, "audit", "transitions", "--to", "nowhere")
    assert code == 2


def test_status_calls_for_attention_when_no_worker_has_swept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead worker with nothing due yet shows no overdue timer: the missing
    sweep record is what says so."""
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    code, out = run(capsys, "status")
    assert code == 1 and "ATTENTION: no sweep recorded ever" in out
    assert run(capsys, "check-deadlines", "--operator", "ops")[0] == 0
    code, out = run(capsys, "status")
    assert code == 0 and "ATTENTION" not in out, out


def test_start_url_and_profile_url_carry_one_single_use_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.requests import Request

    from adapters.http.auth import SignedTokenAuth, link_marker_of

    db = f"sqlite:///{tmp_path / 'urls.sqlite3'}"
    secret = "s" * 40
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", db)
    monkeypatch.setenv("ONBOARDING_FSM_SESSION_SECRET", secret)
    engine = build_engine(Settings(database_url=db))
    acct = engine.create_account("cli-urls", "US", ["transfers"]).stripe_account_id
    code, start = stdout(capsys, "start-url", acct, "--holder", "alice")
    settings = Settings(database_url=db)
    assert code == 0 and start.startswith(f"{settings.start_url(acct)}?token=")
    code, profile = stdout(capsys, "start-url", acct, "--holder", "alice", "--profile")
    assert code == 0 and profile.startswith(f"{settings.profile_url(acct)}?token=")
    auth = SignedTokenAuth(secret, max_age=60, token_max_age=600, link_marker=link_marker_of(engine))
    query = profile.strip().split("?", 1)[1].encode()
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": []})
    assert auth.authenticate(request, acct) == "holder:alice"  # what the serving app will accept
