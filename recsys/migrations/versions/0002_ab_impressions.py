"""A/B tests: the impression log and one running test at a time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ab_impressions',
    sa.Column('impression_id', sa.String(length=40), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('test_id', sa.BigInteger(), nullable=True),
    sa.Column('arm', sa.String(length=16), nullable=True),
    sa.Column('model_id', sa.String(length=26), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=True),
    sa.Column('products', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('impression_id')
    )
    with op.batch_alter_table('ab_impressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ab_impressions_request_id'), ['request_id'], unique=False)
        batch_op.create_index('idx_impressions_test_time', ['test_id', 'timestamp'], unique=False)
        batch_op.create_index('idx_impressions_user_time', ['user_id', 'timestamp'], unique=False)
    with op.batch_alter_table('ab_tests', schema=None) as batch_op:
        batch_op.create_index('uq_ab_tests_one_running', ['status'], unique=True,
                              postgresql_where=sa.text("status = 'RUNNING'"), sqlite_where=sa.text("status = 'RUNNING'"))


def downgrade() -> None:
    with op.batch_alter_table('ab_tests', schema=None) as batch_op:
        batch_op.drop_index('uq_ab_tests_one_running', postgresql_where=sa.text("status = 'RUNNING'"),
                            sqlite_where=sa.text("status = 'RUNNING'"))
    with op.batch_alter_table('ab_impressions', schema=None) as batch_op:
        batch_op.drop_index('idx_impressions_user_time')
        batch_op.drop_index('idx_impressions_test_time')
        batch_op.drop_index(batch_op.f('ix_ab_impressions_request_id'))
    op.drop_table('ab_impressions')
