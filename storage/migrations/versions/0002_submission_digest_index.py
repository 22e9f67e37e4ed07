"""submission digest index

The digests (and the dashboard's weekly trend) read a few small columns of every
submission. In the table they sit after the reflection's text (~3 KB each, mostly in
overflow pages), so a district read went through ~200 MB. A covering index holds just
those columns. It leads with task_id, so it also does the old task_id index's work (the
cascade from task), and that index goes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:26:52.190347
"""
from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index('ix_submission_digest', ['task_id', 'person_id', 'state', 'chars', 'flag',
                                                       'similar_to_person_id', 'similarity', 'accepted_at',
                                                       'updated_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_submission_task_id'))


def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_task_id'), ['task_id'], unique=False)
        batch_op.drop_index('ix_submission_digest')
