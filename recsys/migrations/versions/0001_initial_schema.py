"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipeline_runs',
    sa.Column('run_date', sa.Date(), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('run_date', 'step')
    )
    op.create_table('products',
    sa.Column('product_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('category', sa.String(length=128), nullable=False),
    sa.Column('price', sa.Float(), nullable=False),
    sa.Column('margin', sa.Float(), nullable=False),
    sa.Column('in_stock', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('product_id')
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_products_category'), ['category'], unique=False)

    op.create_table('recommendation_models',
    sa.Column('model_id', sa.String(length=26), nullable=False),
    sa.Column('model_type', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('train_date', sa.Date(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('training_samples_count', sa.BigInteger(), nullable=False),
    sa.Column('artifact_uri', sa.String(length=1024), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision', sa.String(length=512), nullable=True),
    sa.PrimaryKeyConstraint('model_id'),
    sa.UniqueConstraint('version')
    )
    with op.batch_alter_table('recommendation_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recommendation_models_status'), ['status'], unique=False)
        batch_op.create_index('uq_models_one_live', ['status'], unique=True, postgresql_where=sa.text("status = 'LIVE'"), sqlite_where=sa.text("status = 'LIVE'"))

    op.create_table('user_events',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('product_id', sa.BigInteger(), nullable=True),
    sa.Column('event_type', sa.String(length=32), nullable=True),
    sa.Column('session_id', sa.String(length=255), nullable=True),
    sa.Column('timestamp', sa.BigInteger(), nullable=True),
    sa.Column('price', sa.Float(), nullable=True),
    sa.Column('client_event_id', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('event_id'),
    sa.UniqueConstraint('client_event_id')
    )
    with op.batch_alter_table('user_events', schema=None) as batch_op:
        batch_op.create_index('idx_events_timestamp', ['timestamp'], unique=False)
    # expression index (autogenerate cannot compare it on SQLite): written by hand
    op.create_index('idx_events_user_product_time', 'user_events', ['user_id', 'product_id', sa.text('timestamp DESC')])

    op.create_table('user_product_interactions',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('product_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('purchases', sa.Integer(), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.Column('view_duration_seconds', sa.Integer(), nullable=False),
    sa.Column('last_interaction', sa.BigInteger(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'product_id')
    )
    with op.batch_alter_table('user_product_interactions', schema=None) as batch_op:
        batch_op.create_index('idx_interactions_product', ['product_id'], unique=False)

    op.create_table('users',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('country', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('device_type', sa.String(length=16), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('ab_tests',
    sa.Column('test_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('control_model_id', sa.String(length=26), nullable=False),
    sa.Column('treatment_model_id', sa.String(length=26), nullable=False),
    sa.Column('treatment_fraction', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('num_users', sa.BigInteger(), nullable=False),
    sa.Column('control_ctr', sa.Float(), nullable=True),
    sa.Column('treatment_ctr', sa.Float(), nullable=True),
    sa.Column('pvalue', sa.Float(), nullable=True),
    sa.Column('winner', sa.String(length=16), nullable=True),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['control_model_id'], ['recommendation_models.model_id'], ),
    sa.ForeignKeyConstraint(['treatment_model_id'], ['recommendation_models.model_id'], ),
    sa.PrimaryKeyConstraint('test_id')
    )


def downgrade() -> None:
    op.drop_table('ab_tests')
    op.drop_table('users')
    with op.batch_alter_table('user_product_interactions', schema=None) as batch_op:
        batch_op.drop_index('idx_interactions_product')

    op.drop_table('user_product_interactions')
    with op.batch_alter_table('user_events', schema=None) as batch_op:
        batch_op.drop_index('idx_events_timestamp')
    op.drop_index('idx_events_user_product_time', table_name='user_events')

    op.drop_table('user_events')
    with op.batch_alter_table('recommendation_models', schema=None) as batch_op:
        batch_op.drop_index('uq_models_one_live', postgresql_where=sa.text("status = 'LIVE'"), sqlite_where=sa.text("status = 'LIVE'"))
        batch_op.drop_index(batch_op.f('ix_recommendation_models_status'))

    op.drop_table('recommendation_models')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_category'))

    op.drop_table('products')
    op.drop_table('pipeline_runs')
