"""Impression dead letters: stream entries the flusher could not write, with the reason

Revision ID: 0003_dead_letter
Revises: 0002
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_dead_letter'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('impression_dead_letters',
    sa.Column('stream_id', sa.String(length=64), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=512), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('stream_id')
    )


def downgrade() -> None:
    op.drop_table('impression_dead_letters')
