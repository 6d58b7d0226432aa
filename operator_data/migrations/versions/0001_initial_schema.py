"""Initial schema: registry, message log, outbox, ledger, transactions, operations tables.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import operator_data.store.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("meter_number", sa.String(length=11), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column(
            "meter_time", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "received_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("message_id", sa.String(length=26), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column(
            "acknowledged_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "cleared_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alarms_meter_number_received_at", ["meter_number", "received_at"], unique=False
        )
        batch_op.create_index("ix_alarms_received_at", ["received_at"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_subject", ["subject_type", "subject_id"], unique=False)

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tariff_segment", sa.String(length=16), nullable=False),
        sa.Column("power_va", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column(
            "opted_out_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "inactive_since", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "created_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint("status IN ('active', 'inactive')", name=op.f("ck_customers_status")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_name", ["name"], unique=False)

    op.create_table(
        "helpdesk_items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("customer_id", sa.String(length=12), nullable=True),
        sa.Column("meter_number", sa.String(length=11), nullable=True),
        sa.Column("msisdn", sa.String(length=16), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", sa.String(length=64), nullable=True),
        sa.Column(
            "opened_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "resolved_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("closed_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_items")),
    )
    with op.batch_alter_table("helpdesk_items", schema=None) as batch_op:
        batch_op.create_index("ix_helpdesk_items_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_helpdesk_items_meter_number", ["meter_number"], unique=False)
        batch_op.create_index("ix_helpdesk_items_msisdn", ["msisdn"], unique=False)
        batch_op.create_index(
            "ix_helpdesk_items_state_opened_at", ["state", "opened_at"], unique=False
        )

    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("flow", sa.String(length=24), nullable=False),
        sa.Column("peer_msisdn", sa.String(length=16), nullable=True),
        sa.Column("peer_raw", sa.String(length=32), nullable=True),
        sa.Column("meter_number", sa.String(length=11), nullable=True),
        sa.Column("customer_id", sa.String(length=12), nullable=True),
        sa.Column("gateway_id", sa.String(length=64), nullable=True),
        sa.Column("modem_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("raw_pdu", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("in_reply_to", sa.String(length=26), nullable=True),
        sa.Column("transaction_id", sa.String(length=26), nullable=True),
        sa.Column(
            "created_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_messages_direction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_messages_idempotency_key")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_correlation_id", ["correlation_id"], unique=False)
        batch_op.create_index("ix_messages_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_messages_customer_id_created_at", ["customer_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_messages_meter_number_created_at", ["meter_number", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_messages_peer_msisdn_created_at", ["peer_msisdn", "created_at"], unique=False
        )
        batch_op.create_index("ix_messages_state_state_at", ["state", "state_at"], unique=False)
        batch_op.create_index("ix_messages_transaction_id", ["transaction_id"], unique=False)

    op.create_table(
        "sla_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column(
            "started_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ended_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("target_ms", sa.BigInteger(), nullable=True),
        sa.Column("met", sa.Boolean(), nullable=True),
        sa.Column(
            "recorded_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_events")),
    )
    with op.batch_alter_table("sla_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sla_events_metric_started_at", ["metric", "started_at"], unique=False
        )
        batch_op.create_index("ix_sla_events_subject", ["subject_type", "subject_id"], unique=False)

    op.create_table(
        "telemetry_readings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("meter_number", sa.String(length=11), nullable=False),
        sa.Column(
            "meter_time", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "received_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("credit_kwh", sa.String(length=16), nullable=True),
        sa.Column("total_kwh", sa.String(length=16), nullable=True),
        sa.Column("values", sa.JSON(), nullable=True),
        sa.Column("message_id", sa.String(length=26), nullable=True),
        sa.Column("ap2t_batch", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_readings")),
    )
    with op.batch_alter_table("telemetry_readings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telemetry_readings_meter_number_received_at",
            ["meter_number", "received_at"],
            unique=False,
        )
        batch_op.create_index("ix_telemetry_readings_received_at", ["received_at"], unique=False)

    op.create_table(
        "cost_ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("customer_id", sa.String(length=12), nullable=True),
        sa.Column("flow", sa.String(length=24), nullable=False),
        sa.Column("price_version", sa.String(length=32), nullable=False),
        sa.Column("amount_idr", sa.BigInteger(), nullable=False),
        sa.Column(
            "charged_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_cost_ledger_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_ledger")),
        sa.UniqueConstraint("message_id", name=op.f("uq_cost_ledger_message_id")),
    )
    with op.batch_alter_table("cost_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_cost_ledger_charged_at", ["charged_at"], unique=False)
        batch_op.create_index(
            "ix_cost_ledger_customer_id_charged_at", ["customer_id", "charged_at"], unique=False
        )

    op.create_table(
        "customer_phones",
        sa.Column("msisdn", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=12), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column(
            "locked_until", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "created_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("msisdn", name=op.f("pk_customer_phones")),
    )
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.create_index("ix_customer_phones_customer_id", ["customer_id"], unique=False)

    op.create_table(
        "message_states",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_states_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_states")),
    )
    with op.batch_alter_table("message_states", schema=None) as batch_op:
        batch_op.create_index("ix_message_states_message_id_at", ["message_id", "at"], unique=False)
        batch_op.create_index("ix_message_states_state_at", ["state", "at"], unique=False)

    op.create_table(
        "meters",
        sa.Column("meter_number", sa.String(length=11), nullable=False),
        sa.Column("customer_id", sa.String(length=12), nullable=False),
        sa.Column("supply_group_code", sa.String(length=6), nullable=False),
        sa.Column("tariff_index", sa.String(length=2), nullable=False),
        sa.Column("key_revision", sa.Integer(), nullable=False),
        sa.Column("key_type", sa.Integer(), nullable=False),
        sa.Column("base_date", sa.Integer(), nullable=False),
        sa.Column("comms_key_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("comms_key_master_id", sa.String(length=32), nullable=True),
        sa.Column("comms_key_id", sa.String(length=32), nullable=True),
        sa.Column("tx_counter", sa.BigInteger(), nullable=False),
        sa.Column("rx_counter", sa.BigInteger(), nullable=False),
        sa.Column("replay_window", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name=op.f("fk_meters_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("meter_number", name=op.f("pk_meters")),
    )
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.create_index("ix_meters_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_meters_state", ["state", "state_at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("destination", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("gateway_hint", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "available_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_until", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_outbox_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_claimable", ["priority", "available_at"], unique=False)

    op.create_table(
        "meter_states",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("meter_number", sa.String(length=11), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meter_number"],
            ["meters.meter_number"],
            name=op.f("fk_meter_states_meter_number_meters"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_states")),
    )
    with op.batch_alter_table("meter_states", schema=None) as batch_op:
        batch_op.create_index(
            "ix_meter_states_meter_number_at", ["meter_number", "at"], unique=False
        )

    op.create_table(
        "sims",
        sa.Column(
            "sim_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("msisdn", sa.String(length=16), nullable=False),
        sa.Column("iccid", sa.String(length=22), nullable=False),
        sa.Column("operator", sa.String(length=32), nullable=False),
        sa.Column("m2m", sa.Boolean(), nullable=False),
        sa.Column("responsible_person", sa.String(length=200), nullable=False),
        sa.Column("meter_number", sa.String(length=11), nullable=True),
        sa.Column(
            "created_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["meter_number"], ["meters.meter_number"], name=op.f("fk_sims_meter_number_meters")
        ),
        sa.PrimaryKeyConstraint("sim_id", name=op.f("pk_sims")),
        sa.UniqueConstraint("iccid", name=op.f("uq_sims_iccid")),
        sa.UniqueConstraint("meter_number", name=op.f("uq_sims_meter_number")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_sims_msisdn")),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("meter_number", sa.String(length=11), nullable=False),
        sa.Column("customer_id", sa.String(length=12), nullable=False),
        sa.Column("phone_msisdn", sa.String(length=16), nullable=True),
        sa.Column("amount_idr", sa.BigInteger(), nullable=False),
        sa.Column("kwh", sa.String(length=16), nullable=True),
        sa.Column("token_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("token_master_id", sa.String(length=32), nullable=True),
        sa.Column("token_masked", sa.String(length=32), nullable=True),
        sa.Column("pln_ref", sa.String(length=64), nullable=True),
        sa.Column("switcher_ref", sa.String(length=64), nullable=True),
        sa.Column("stan", sa.String(length=12), nullable=True),
        sa.Column("response_code", sa.String(length=4), nullable=True),
        sa.Column("meter_outcome", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("request_message_id", sa.String(length=26), nullable=True),
        sa.Column(
            "created_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_transactions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["meter_number"],
            ["meters.meter_number"],
            name=op.f("fk_transactions_meter_number_meters"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_transactions_idempotency_key")),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index("ix_transactions_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_transactions_customer_id_created_at", ["customer_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_transactions_meter_number_created_at", ["meter_number", "created_at"], unique=False
        )
        batch_op.create_index("ix_transactions_pln_ref", ["pln_ref"], unique=False)
        batch_op.create_index("ix_transactions_state_state_at", ["state", "state_at"], unique=False)
        batch_op.create_index("ix_transactions_switcher_ref", ["switcher_ref"], unique=False)

    op.create_table(
        "sim_swaps",
        sa.Column(
            "swap_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("meter_number", sa.String(length=11), nullable=False),
        sa.Column(
            "old_sim_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "new_sim_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column(
            "requested_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column(
            "decided_at", operator_data.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meter_number"], ["meters.meter_number"], name=op.f("fk_sim_swaps_meter_number_meters")
        ),
        sa.ForeignKeyConstraint(
            ["new_sim_id"], ["sims.sim_id"], name=op.f("fk_sim_swaps_new_sim_id_sims")
        ),
        sa.ForeignKeyConstraint(
            ["old_sim_id"], ["sims.sim_id"], name=op.f("fk_sim_swaps_old_sim_id_sims")
        ),
        sa.PrimaryKeyConstraint("swap_id", name=op.f("pk_sim_swaps")),
    )
    with op.batch_alter_table("sim_swaps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sim_swaps_meter_number", ["meter_number", "requested_at"], unique=False
        )
        batch_op.create_index("ix_sim_swaps_state", ["state"], unique=False)

    op.create_table(
        "transaction_states",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("transaction_id", sa.String(length=26), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", operator_data.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_transaction_states_transaction_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_states")),
    )
    with op.batch_alter_table("transaction_states", schema=None) as batch_op:
        batch_op.create_index("ix_transaction_states_state_at", ["state", "at"], unique=False)
        batch_op.create_index(
            "ix_transaction_states_transaction_id_at", ["transaction_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("transaction_states", schema=None) as batch_op:
        batch_op.drop_index("ix_transaction_states_transaction_id_at")
        batch_op.drop_index("ix_transaction_states_state_at")

    op.drop_table("transaction_states")
    with op.batch_alter_table("sim_swaps", schema=None) as batch_op:
        batch_op.drop_index("ix_sim_swaps_state")
        batch_op.drop_index("ix_sim_swaps_meter_number")

    op.drop_table("sim_swaps")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_switcher_ref")
        batch_op.drop_index("ix_transactions_state_state_at")
        batch_op.drop_index("ix_transactions_pln_ref")
        batch_op.drop_index("ix_transactions_meter_number_created_at")
        batch_op.drop_index("ix_transactions_customer_id_created_at")
        batch_op.drop_index("ix_transactions_created_at")

    op.drop_table("transactions")
    op.drop_table("sims")
    with op.batch_alter_table("meter_states", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_states_meter_number_at")

    op.drop_table("meter_states")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_claimable")

    op.drop_table("outbox")
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.drop_index("ix_meters_state")
        batch_op.drop_index("ix_meters_customer_id")

    op.drop_table("meters")
    with op.batch_alter_table("message_states", schema=None) as batch_op:
        batch_op.drop_index("ix_message_states_state_at")
        batch_op.drop_index("ix_message_states_message_id_at")

    op.drop_table("message_states")
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_phones_customer_id")

    op.drop_table("customer_phones")
    with op.batch_alter_table("cost_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_cost_ledger_customer_id_charged_at")
        batch_op.drop_index("ix_cost_ledger_charged_at")

    op.drop_table("cost_ledger")
    with op.batch_alter_table("telemetry_readings", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_readings_received_at")
        batch_op.drop_index("ix_telemetry_readings_meter_number_received_at")

    op.drop_table("telemetry_readings")
    with op.batch_alter_table("sla_events", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_events_subject")
        batch_op.drop_index("ix_sla_events_metric_started_at")

    op.drop_table("sla_events")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_transaction_id")
        batch_op.drop_index("ix_messages_state_state_at")
        batch_op.drop_index("ix_messages_peer_msisdn_created_at")
        batch_op.drop_index("ix_messages_meter_number_created_at")
        batch_op.drop_index("ix_messages_customer_id_created_at")
        batch_op.drop_index("ix_messages_created_at")
        batch_op.drop_index("ix_messages_correlation_id")

    op.drop_table("messages")
    with op.batch_alter_table("helpdesk_items", schema=None) as batch_op:
        batch_op.drop_index("ix_helpdesk_items_state_opened_at")
        batch_op.drop_index("ix_helpdesk_items_msisdn")
        batch_op.drop_index("ix_helpdesk_items_meter_number")
        batch_op.drop_index("ix_helpdesk_items_customer_id")

    op.drop_table("helpdesk_items")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_name")

    op.drop_table("customers")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_subject")
        batch_op.drop_index("ix_audit_log_at")
        batch_op.drop_index("ix_audit_log_actor_at")

    op.drop_table("audit_log")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_received_at")
        batch_op.drop_index("ix_alarms_meter_number_received_at")

    op.drop_table("alarms")
