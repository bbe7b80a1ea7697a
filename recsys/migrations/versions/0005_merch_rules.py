"""Merchandising rules: ``merch_rules`` (boost, bury, pin, block, promote), versioned (issue 24)

Revision ID: 0005_merch_rules
Revises: 0004_model_integrity
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_merch_rules'
down_revision = '0004_model_integrity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('merch_rules',
    sa.Column('rule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('products', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('price_min', sa.Float(), nullable=True),
    sa.Column('price_max', sa.Float(), nullable=True),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=True),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('rule_id')
    )


def downgrade() -> None:
    op.drop_table('merch_rules')
