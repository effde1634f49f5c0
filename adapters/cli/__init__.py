"""The ``onboarding-fsm`` command line: each verb a thin shell over one
engine call (``main``), plus the long-running ``serve`` and the ``demo``."""

from .main import main

__all__ = ["main"]
