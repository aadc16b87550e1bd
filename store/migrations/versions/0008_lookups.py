"""Looking payments up by what their callers know: indexes on payments' merchant reference and
idempotency key, and the merchant reference of every API submission

`paymq status order-1001` and the API's `GET /payments?merchant_reference=...` find payments
by merchant reference or idempotency key. The payments table had neither indexed (its unique
key leads with the producer), and the API's submissions did not keep the merchant reference:
it is read from each stored request here, once.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Rows read and written per statement while filling the new column.
_BATCH = 500

_submissions = sa.table(
    "api_submissions",
    sa.column("api_key_id", sa.String),
    sa.column("idempotency_key", sa.String),
    sa.column("body", sa.LargeBinary),
    sa.column("merchant_reference", sa.String),
)


def upgrade() -> None:
    op.create_index("ix_payments_reference", "payments", ["merchant_reference"])
    op.create_index("ix_payments_idempotency_key", "payments", ["idempotency_key"])
    with op.batch_alter_table("api_submissions") as batch:
        batch.add_column(sa.Column("merchant_reference", sa.String(128)))
    _fill_merchant_references(op.get_bind())
    with op.batch_alter_table("api_submissions") as batch:
        batch.alter_column("merchant_reference", existing_type=sa.String(128), nullable=False)
    op.create_index(
        "ix_api_submissions_reference", "api_submissions", ["api_key_id", "merchant_reference"]
    )
    op.create_index("ix_api_submissions_idempotency_key", "api_submissions", ["idempotency_key"])


def _fill_merchant_references(connection: sa.Connection) -> None:
    """Each submission's merchant reference, from the signed request it stored (the request's
    JSON body), a batch at a time."""
    c = _submissions.c
    pending = (
        sa.select(c.api_key_id, c.idempotency_key, c.body)
        .where(c.merchant_reference.is_(None))
        .limit(_BATCH)
    )
    while rows := connection.execute(pending).all():
        for api_key_id, idempotency_key, body in rows:
            connection.execute(
                _submissions.update()
                .where(c.api_key_id == api_key_id, c.idempotency_key == idempotency_key)
                .values(merchant_reference=json.loads(bytes(body))["merchant_reference"])
            )


def downgrade() -> None:
    op.drop_index("ix_api_submissions_idempotency_key", "api_submissions")
    op.drop_index("ix_api_submissions_reference", "api_submissions")
    with op.batch_alter_table("api_submissions") as batch:
        batch.drop_column("merchant_reference")
    op.drop_index("ix_payments_idempotency_key", "payments")
    op.drop_index("ix_payments_reference", "payments")
