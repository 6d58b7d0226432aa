"""Re-mask customers' PINs in the message log (issue 16).

Before this, `mask_secrets` masked a PIN only after an exact BELI/BUY/ISI/TOKEN keyword and a
space, so mistyped commands (`BRLI 100rb 5162`) and forms the parser accepts (`BELI 100000
1234#`, `#BELI 100000 1234`, `BELI,100000,1234,`) were logged with the PIN in clear. Every
inbound customer SMS already logged gets its text masked again with today's masking (the
parser's own tokenisation), and loses its raw PDU: the body is what the log shows, and raw
bytes of a customer command are the command with its PIN.

Masking cannot be undone: the downgrade leaves the masked rows as they are.

Revision ID: 0002_remask_customer_pins
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from operator_data.commands.grammar import mask_secrets

revision: str = "0002_remask_customer_pins"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("remask_customer_pins",)
depends_on: str | Sequence[str] | None = None

_PAGE = 1000  # rows read at a time: the log can be large, memory stays flat

_messages = sa.table(
    "messages",
    sa.column("id", sa.String),
    sa.column("direction", sa.String),
    sa.column("flow", sa.String),
    sa.column("body", sa.Text),
    sa.column("raw_pdu", sa.LargeBinary),
)
_CUSTOMER_COMMANDS = sa.and_(_messages.c.direction == "in", _messages.c.flow == "customer_to_hub")


def upgrade() -> None:
    bind = op.get_bind()
    # Raw bytes of a customer's command: dropped set-wise, one statement.
    bind.execute(
        sa.update(_messages)
        .where(_CUSTOMER_COMMANDS, _messages.c.raw_pdu.is_not(None))
        .values(raw_pdu=None)
    )
    after = ""
    while True:
        rows = bind.execute(
            sa.select(_messages.c.id, _messages.c.body)
            .where(_CUSTOMER_COMMANDS, _messages.c.id > after, _messages.c.body.is_not(None))
            .order_by(_messages.c.id)
            .limit(_PAGE)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        changed = [
            {"key": row.id, "masked": masked}
            for row in rows
            if (masked := mask_secrets(row.body)) != row.body
        ]
        if changed:
            bind.execute(
                sa.update(_messages)
                .where(_messages.c.id == sa.bindparam("key"))
                .values(body=sa.bindparam("masked")),
                changed,
            )


def downgrade() -> None:
    pass  # a masked PIN cannot be unmasked, nor should it be
