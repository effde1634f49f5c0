"""Log lines for people or for machines (setting ``log_format``): text, or
one JSON object per line.

A JSON line carries ``time`` (ISO 8601, UTC, milliseconds), ``level``,
``logger`` and ``message``, then every field the caller passed with
``extra=``: the engine passes ``account``, ``event``, ``run``, ``trigger``,
``request``… wherever a line is about one, so a log pipeline selects an
account's or a run's lines without parsing prose; ``exception`` holds a
traceback. The engine's lines name ids, states, triggers and requirement
*names*, never identity values, secrets or Account Link URLs (a test runs
a scenario and checks). The standard library does this in a few lines: no
dependency. ``time`` is when the line was written (the record's own wall
clock), not the engine's ``Clock``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: the attributes every ``LogRecord`` has: anything else came with ``extra=``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
#: extras that are not fields: uvicorn's coloured copy of the message
_SKIPPED = frozenset({"color_message"})

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extras with ``None`` values are left out."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in _SKIPPED and not name.startswith("_") and value is not None:
                line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT)


def configure(level: int, fmt: LogFormat = "text", stream: TextIO | None = None) -> None:
    """The root logger's handler in ``fmt`` (stderr by default). Like
    ``logging.basicConfig``, it leaves a root logger that has handlers alone
    (a host application's, or pytest's)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])


#: uvicorn's loggers without handlers of their own, propagating to the root's
_UVICORN_TO_ROOT = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
}


def uvicorn_options(fmt: LogFormat) -> dict[str, Any]:
    """``uvicorn.Config`` options for ``fmt``. For JSON, uvicorn's loggers lose
    their own handlers and propagate to the root logger's JSON handler — undoing
    uvicorn's default config even when another server in the process (the
    embedded simulator's) has applied it already."""
    return {"log_config": _UVICORN_TO_ROOT} if fmt == "json" else {}


def banner(fmt: LogFormat, out: TextIO) -> Callable[[str], None]:
    """How a command tells its operator what it is doing on stdout: plain lines,
    or with ``json`` the same lines as log objects (a collector that merges
    stdout and stderr then still reads one JSON object per line)."""
    if fmt != "json":

        def write(line: str) -> None:
            out.write(line + "\n")

        return write
    json_format = JsonFormatter()

    def emit(line: str) -> None:
        level = logging.WARNING if line.lstrip().startswith("warning:") else logging.INFO
        record = logging.LogRecord("onboarding_fsm.serve", level, __file__, 0, line.strip(), None, None)
        out.write(json_format.format(record) + "\n")

    return emit
