"""drop task minimums

task.min_chars and task.min_photos copied the plan's numbers into the database, and nothing
ever read them: the loaded plan (term.plan_toml) is where minimums are read from.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task') as batch:
        batch.drop_column('min_chars')
        batch.drop_column('min_photos')


def downgrade() -> None:
    with op.batch_alter_table('task') as batch:
        batch.add_column(sa.Column('min_photos', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('min_chars', sa.Integer(), nullable=True))
