"""Where settings come from, and how a refusal reads.

The environment is shared (Kubernetes injects ``ONBOARDING_FSM_SERVICE_*``
for a Service of that name), so only a near-miss of a setting's name is
refused; pydantic's validation errors are turned into one line an operator
can act on.
"""

from __future__ import annotations

import difflib
import os
import re

from pydantic import ValidationError

from .errors import SettingsError

CONFIG_ENV = "ONBOARDING_FSM_CONFIG"
ENV_PREFIX = "ONBOARDING_FSM_"
#: ``ONBOARDING_FSM_*`` names that are not settings: the settings file, and the
#: test suite's and CI's switches (tests/conftest.py, .ci/run, the browser test).
#: Every other name must be a setting: a misspelt one (``..._WEBHOOK_SECRET``
#: for ``..._WEBHOOK_SECRETS``) would otherwise be ignored without a word and
#: the process would run on the default — the simulator's public secret, say.
NOT_SETTINGS = frozenset(
    {
        CONFIG_ENV,
        "ONBOARDING_FSM_TEST_POSTGRES_URL",
        "ONBOARDING_FSM_REQUIRE_POSTGRES",
        "ONBOARDING_FSM_REQUIRE_BROWSER",
        "ONBOARDING_FSM_CHROMIUM",
    }
)


#: what Kubernetes injects for a Service named ``onboarding-fsm`` (docker links
#: did the same): ``..._SERVICE_HOST``, ``..._SERVICE_PORT[_NAME]``, ``..._PORT``,
#: ``..._PORT_8000_TCP[_ADDR|_PORT|_PROTO]``: never a setting, even if close to one
KUBERNETES = re.compile(re.escape(ENV_PREFIX) + r"(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_\w+)?)?)")


def refuse_unknown_environment(fields: set[str]) -> None:
    """An ``ONBOARDING_FSM_*`` variable that is almost a setting's name is a
    typo pydantic-settings would ignore silently: refuse it. Others are left
    alone: the environment is shared (Kubernetes injects
    ``ONBOARDING_FSM_SERVICE_HOST`` / ``_PORT…`` for a Service of that name)."""
    known = {ENV_PREFIX + name.upper() for name in fields} | NOT_SETTINGS
    unknown = sorted(
        k
        for k in os.environ
        if k.upper().startswith(ENV_PREFIX) and k.upper() not in known and not KUBERNETES.fullmatch(k.upper())
    )
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.85)
        if close:
            hints.append(f"{name} (did you mean {close[0]}?)")
    if hints:
        listed = ", ".join(hints)
        raise SettingsError(f"unknown environment variable(s): {listed}; a misspelt setting would be ignored")


def describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "settings"
        problems.append(f"{where}: {error.get('msg')}")
    return "invalid settings: " + "; ".join(problems)
