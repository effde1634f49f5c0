#!/usr/bin/env python3
"""Set-up and tasks on a machine that has only Python 3.11+.

    python3 dev.py demo     # create .venv if needed, run `onboarding-fsm demo`
    python3 dev.py test     # create .venv if needed, run ruff, mypy and the whole test suite
    python3 dev.py bench    # the benchmarks (python -m bench)
    python3 dev.py run ...  # any command inside the virtual environment

The virtual environment is (re)installed only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".dev-install-stamp"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself may run on an older Python
        sys.exit(f"onboarding-fsm needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print("installing onboarding-fsm and its dev dependencies", flush=True)
        run(["python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        run(["python", "-m", "pip", "install", "--quiet", "-e", ".[dev]"])
        STAMP.write_text(wanted)


def run(argv: list[str]) -> None:
    exe = BIN / argv[0]
    result = subprocess.run([str(exe) if exe.exists() else argv[0], *argv[1:]], cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def main() -> None:
    task, *rest = sys.argv[1:] or ["help"]
    if task in ("help", "-h", "--help"):
        print(__doc__)
        return
    ensure_venv()
    if task == "demo":
        run(["onboarding-fsm", "demo", *rest])
    elif task == "test":
        run(["ruff", "check", "."])
        run(["ruff", "format", "--check", "."])
        run(["mypy"])
        run(["python", "-m", "pytest", *rest])
    elif task == "bench":
        run(["python", "-m", "bench", *rest])
    elif task == "run":
        run(rest)
    else:
        sys.exit(f"unknown task {task!r}; see `python3 dev.py help`")


if __name__ == "__main__":
    main()
