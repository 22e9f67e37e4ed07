"""change stamp

Each serving process (`serve --workers N`, or several instances) caches people, schools
and groups. A roster import or a group (re-)bind in another process bumps the
"directory" stamp, and the cache reloads when it sees a new one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('change_stamp',
                    sa.Column('name', sa.String(length=50), nullable=False),
                    sa.Column('version', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('name', name=op.f('pk_change_stamp')))
    op.execute("INSERT INTO change_stamp (name, version) VALUES ('directory', 0)")


def downgrade() -> None:
    op.drop_table('change_stamp')
