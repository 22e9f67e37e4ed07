"""identity

A person's platform user ids move from one column per platform (person.dingtalk_userid,
person.wecom_userid) to one table of (platform, user id) → person, so a platform is added
without a new column and nothing outside platforms/ names one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = {"dingtalk": "dingtalk_userid", "wecom": "wecom_userid"}


def upgrade() -> None:
    op.create_table('identity',
                    sa.Column('platform', sa.String(length=20), nullable=False),
                    sa.Column('user_id', sa.String(length=100), nullable=False),
                    sa.Column('person_id', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ondelete='CASCADE',
                                            name=op.f('fk_identity_person_id_person')),
                    sa.PrimaryKeyConstraint('platform', 'user_id', name=op.f('pk_identity')))
    op.create_index(op.f('ix_identity_person_id'), 'identity', ['person_id'], unique=False)
    for platform, column in COLUMNS.items():
        op.execute(f"INSERT INTO identity (platform, user_id, person_id) "
                   f"SELECT '{platform}', {column}, id FROM person WHERE {column} IS NOT NULL AND {column} <> ''")
    with op.batch_alter_table('person') as batch:
        batch.drop_constraint('uq_person_dingtalk_userid', type_='unique')
        batch.drop_constraint('uq_person_wecom_userid', type_='unique')
        batch.drop_column('dingtalk_userid')
        batch.drop_column('wecom_userid')


def downgrade() -> None:
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('wecom_userid', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('dingtalk_userid', sa.String(length=100), nullable=True))
        batch.create_unique_constraint('uq_person_dingtalk_userid', ['dingtalk_userid'])
        batch.create_unique_constraint('uq_person_wecom_userid', ['wecom_userid'])
    for platform, column in COLUMNS.items():
        op.execute(f"UPDATE person SET {column} = (SELECT user_id FROM identity "
                   f"WHERE identity.person_id = person.id AND identity.platform = '{platform}')")
    op.drop_index(op.f('ix_identity_person_id'), table_name='identity')
    op.drop_table('identity')
