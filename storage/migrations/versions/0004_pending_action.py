"""pending action

广播 and 改绑 reach many people, so they are two steps: the request is kept here until the
same person confirms it (确认) within ten minutes, or cancels it (取消).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pending_action',
                    sa.Column('person_id', sa.Integer(), nullable=False),
                    sa.Column('kind', sa.String(length=20), nullable=False),
                    sa.Column('payload', sa.JSON(), nullable=False),
                    sa.Column('created_at', UTCDateTime(), nullable=False),
                    sa.Column('expires_at', UTCDateTime(), nullable=False),
                    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ondelete='CASCADE',
                                            name=op.f('fk_pending_action_person_id_person')),
                    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_pending_action')))


def downgrade() -> None:
    op.drop_table('pending_action')
