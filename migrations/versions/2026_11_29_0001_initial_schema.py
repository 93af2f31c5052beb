"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 06:36:13.080023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('checkpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('training', 'ready', 'current', 'retired', name='checkpointstatus', native_enum=False, length=16), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['checkpoint.id'], name=op.f('fk_checkpoint_parent_id_checkpoint')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoint')),
    sa.UniqueConstraint('version', name=op.f('uq_checkpoint_version'))
    )
    with op.batch_alter_table('checkpoint', schema=None) as batch_op:
        batch_op.create_index('uq_checkpoint_one_current', ['status'], unique=True, sqlite_where=sa.text("status = 'current'"), postgresql_where=sa.text("status = 'current'"))

    op.create_table('prompt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt'))
    )
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prompt_source'), ['source'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.Enum('rater', 'admin', name='role', native_enum=False, length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('name', name=op.f('uq_user_name'))
    )
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_api_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('guideline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_guideline_updated_by_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guideline'))
    )
    op.create_table('item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('compare', 'score', name='itemkind', native_enum=False, length=16), nullable=False),
    sa.Column('purpose', sa.Enum('train', 'progress', 'client', name='itempurpose', native_enum=False, length=16), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('overlap', sa.Integer(), nullable=False),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], name=op.f('fk_item_prompt_id_prompt'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item'))
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index('ix_item_done_id', ['done', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_prompt_id'), ['prompt_id'], unique=False)

    op.create_table('sample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('generation', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoint.id'], name=op.f('fk_sample_checkpoint_id_checkpoint')),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], name=op.f('fk_sample_prompt_id_prompt'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sample'))
    )
    with op.batch_alter_table('sample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sample_checkpoint_id'), ['checkpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sample_prompt_id'), ['prompt_id'], unique=False)

    op.create_table('training_round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='roundstatus', native_enum=False, length=16), nullable=False),
    sa.Column('algorithm', sa.Enum('ppo', 'dpo', name='algorithm', native_enum=False, length=16), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('base_checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('produced_checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('log', sa.Text(), nullable=False),
    sa.Column('progress', sa.Double(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('worker', sa.String(length=255), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['base_checkpoint_id'], ['checkpoint.id'], name=op.f('fk_training_round_base_checkpoint_id_checkpoint')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_training_round_created_by_id_user')),
    sa.ForeignKeyConstraint(['produced_checkpoint_id'], ['checkpoint.id'], name=op.f('fk_training_round_produced_checkpoint_id_checkpoint')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_round'))
    )
    with op.batch_alter_table('training_round', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_round_status'), ['status'], unique=False)

    op.create_table('item_response',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_item_response_item_id_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sample_id'], ['sample.id'], name=op.f('fk_item_response_sample_id_sample')),
    sa.PrimaryKeyConstraint('item_id', 'position', name=op.f('pk_item_response'))
    )
    with op.batch_alter_table('item_response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_response_sample_id'), ['sample_id'], unique=False)

    op.create_table('lease',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('display_order', sa.JSON(), nullable=False),
    sa.Column('skipped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_lease_item_id_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_lease_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lease')),
    sa.UniqueConstraint('item_id', 'user_id', name=op.f('uq_lease_item_id_user_id'))
    )
    with op.batch_alter_table('lease', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lease_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lease_user_id'), ['user_id'], unique=False)

    op.create_table('rating',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.Enum('preferred', 'tie', 'both_bad', name='verdict', native_enum=False, length=16), nullable=True),
    sa.Column('preferred_sample_id', sa.Integer(), nullable=True),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('time_spent_ms', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_rating_item_id_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['preferred_sample_id'], ['sample.id'], name=op.f('fk_rating_preferred_sample_id_sample')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_rating_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rating')),
    sa.UniqueConstraint('item_id', 'user_id', name=op.f('uq_rating_item_id_user_id')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name=op.f('uq_rating_user_id_idempotency_key'))
    )
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rating_user_id'), ['user_id'], unique=False)

    op.create_table('round_metric',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('phase', sa.String(length=32), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['training_round.id'], name=op.f('fk_round_metric_round_id_training_round'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_round_metric'))
    )
    with op.batch_alter_table('round_metric', schema=None) as batch_op:
        batch_op.create_index('ix_round_metric_round_id_name_step', ['round_id', 'name', 'step'], unique=False)

    op.create_table('round_rating',
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['rating_id'], ['rating.id'], name=op.f('fk_round_rating_rating_id_rating')),
    sa.ForeignKeyConstraint(['round_id'], ['training_round.id'], name=op.f('fk_round_rating_round_id_training_round'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('round_id', 'rating_id', name=op.f('pk_round_rating'))
    )


def downgrade() -> None:
    op.drop_table('round_rating')
    with op.batch_alter_table('round_metric', schema=None) as batch_op:
        batch_op.drop_index('ix_round_metric_round_id_name_step')

    op.drop_table('round_metric')
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rating_user_id'))

    op.drop_table('rating')
    with op.batch_alter_table('lease', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lease_user_id'))
        batch_op.drop_index(batch_op.f('ix_lease_expires_at'))

    op.drop_table('lease')
    with op.batch_alter_table('item_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_response_sample_id'))

    op.drop_table('item_response')
    with op.batch_alter_table('training_round', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_round_status'))

    op.drop_table('training_round')
    with op.batch_alter_table('sample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sample_prompt_id'))
        batch_op.drop_index(batch_op.f('ix_sample_checkpoint_id'))

    op.drop_table('sample')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_prompt_id'))
        batch_op.drop_index('ix_item_done_id')

    op.drop_table('item')
    op.drop_table('guideline')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))

    op.drop_table('api_token')
    op.drop_table('user')
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prompt_source'))

    op.drop_table('prompt')
    with op.batch_alter_table('checkpoint', schema=None) as batch_op:
        batch_op.drop_index('uq_checkpoint_one_current', sqlite_where=sa.text("status = 'current'"), postgresql_where=sa.text("status = 'current'"))

    op.drop_table('checkpoint')
