"""programme

The plan's second edition: a meeting knows its activity and its unit (with attend = "one"
the days of a cycle share one unit); a school its township (乡镇); a person the role word the
roster gave (校长, 教研组长…); documents handed in for file tasks; a pending download may be a
file. Meetings stored before keep their name as their activity and are one unit each.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('session_occurrence') as batch:
        batch.add_column(sa.Column('activity', sa.String(length=100), nullable=False, server_default=''))
        batch.add_column(sa.Column('unit', sa.String(length=200), nullable=False, server_default=''))
    op.execute("UPDATE session_occurrence SET activity = name, unit = name || '@' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table('session_occurrence') as batch:
        batch.alter_column('activity', server_default=None)
        batch.alter_column('unit', server_default=None)
    with op.batch_alter_table('school') as batch:
        batch.add_column(sa.Column('township', sa.String(length=100), nullable=True))
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('title', sa.String(length=20), nullable=True))
    with op.batch_alter_table('pending_download') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=10), nullable=False, server_default='photo'))
        batch.add_column(sa.Column('name', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('owner', sa.String(length=120), nullable=True))
    with op.batch_alter_table('pending_download') as batch:
        batch.alter_column('kind', server_default=None)
    op.create_table('file_submission',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('task_id', sa.Integer(), nullable=False),
                    sa.Column('owner', sa.String(length=120), nullable=False),
                    sa.Column('person_id', sa.Integer(), nullable=False),
                    sa.Column('sha256', sa.String(length=64), nullable=False),
                    sa.Column('name', sa.String(length=255), nullable=False),
                    sa.Column('ext', sa.String(length=20), nullable=False),
                    sa.Column('size', sa.Integer(), nullable=False),
                    sa.Column('at', UTCDateTime(), nullable=False),
                    sa.ForeignKeyConstraint(['person_id'], ['person.id'],
                                            name=op.f('fk_file_submission_person_id_person')),
                    sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE',
                                            name=op.f('fk_file_submission_task_id_task')),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_submission')),
                    sa.UniqueConstraint('task_id', 'owner', 'sha256', name=op.f('uq_file_submission_task_id')))
    op.create_index(op.f('ix_file_submission_task_id'), 'file_submission', ['task_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_file_submission_task_id'), table_name='file_submission')
    op.drop_table('file_submission')
    with op.batch_alter_table('pending_download') as batch:
        batch.drop_column('owner')
        batch.drop_column('name')
        batch.drop_column('kind')
    with op.batch_alter_table('person') as batch:
        batch.drop_column('title')
    with op.batch_alter_table('school') as batch:
        batch.drop_column('township')
    with op.batch_alter_table('session_occurrence') as batch:
        batch.drop_column('unit')
        batch.drop_column('activity')
