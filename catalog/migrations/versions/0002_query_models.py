"""which model queries an index: query_model and index_purpose

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('query_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('part', sa.String(length=255), nullable=False),
    sa.Column('purpose', sa.String(length=255), nullable=False),
    sa.Column('model', sa.String(length=255), nullable=False),
    sa.Column('revision', sa.String(length=255), nullable=False),
    sa.Column('set_by', sa.String(length=255), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('query_model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_query_model_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_query_model_purpose'), ['purpose'], unique=False)

    op.create_table('index_purpose',
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('part', sa.String(length=255), nullable=False),
    sa.Column('purpose', sa.String(length=255), nullable=False),
    sa.Column('set_by', sa.String(length=255), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], ),
    sa.PrimaryKeyConstraint('asset_id', 'part')
    )


def downgrade() -> None:
    op.drop_table('index_purpose')
    with op.batch_alter_table('query_model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_query_model_purpose'))
        batch_op.drop_index(batch_op.f('ix_query_model_asset_id'))
    op.drop_table('query_model')
