"""Model integrity: artifact checksums on the registry row, and the promotion history

``recommendation_models.artifacts`` holds ``{file name: sha256}`` (models registered before
this revision have none: their files are refused until ``python -m recsys models trust``).
``model_promotions`` is seeded from the rows that were ever LIVE, in ``promoted_at`` order,
each promoted over the one before it: the best history the old schema can tell.

Revision ID: 0004_model_integrity
Revises: 0003_dead_letter
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_model_integrity'
down_revision = '0003_dead_letter'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recommendation_models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('artifacts', sa.JSON(), nullable=True))
    op.create_table('model_promotions',
    sa.Column('promotion_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('model_id', sa.String(length=26), nullable=False),
    sa.Column('previous_model_id', sa.String(length=26), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rolled_back_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=512), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['recommendation_models.model_id'], ),
    sa.PrimaryKeyConstraint('promotion_id')
    )
    op.execute(
        "INSERT INTO model_promotions (model_id, previous_model_id, kind, promoted_at, reason) "
        "SELECT model_id, LAG(model_id) OVER (ORDER BY promoted_at, version), 'promote', promoted_at, "
        "'history seeded by migration 0003 from promoted_at' "
        "FROM recommendation_models WHERE promoted_at IS NOT NULL ORDER BY promoted_at, version")


def downgrade() -> None:
    op.drop_table('model_promotions')
    with op.batch_alter_table('recommendation_models', schema=None) as batch_op:
        batch_op.drop_column('artifacts')
