"""Reconciliation confirms before it detaches: ``ofsm_accounts.inaccessible_since``.

One 403/404 used to disable an account for good. Now the first run that
cannot see an account only records when; a run at least
``reconcile_confirm_after`` later that still cannot see it detaches it.
Existing rows get NULL (never seen inaccessible).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy_store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ofsm_accounts", sa.Column("inaccessible_since", UTCDateTime()))


def downgrade() -> None:
    op.drop_column("ofsm_accounts", "inaccessible_since")
