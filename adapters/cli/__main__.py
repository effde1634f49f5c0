"""``python -m adapters.cli``: the same as the ``onboarding-fsm`` console script."""

from .main import main

raise SystemExit(main())
