"""The hub's tables (SQLAlchemy Core). Migrations in operator_data/migrations create them.

Sized for a million meters and tens of millions of messages: every helpdesk lookup
(MSISDN, meter number, customer ID, transaction, state, time range) has an index, and
the big log tables (messages, *_states, telemetry) reference other rows by plain
columns without foreign keys where the referenced row may legitimately be unknown
(an SMS from an unregistered number is still logged).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from operator_data.store.types import BigId, UTCDateTime

# Named constraints: Alembic's batch mode (SQLite) needs names to alter tables later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(12), primary_key=True),  # ID pelanggan, 12 digits
    Column("name", String(200), nullable=False),
    Column("tariff_segment", String(16), nullable=False),  # e.g. R1, R1M, B1
    Column("power_va", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # active | inactive
    Column("opted_out", Boolean, nullable=False),  # consent: STOP received (5/2021 art. 177-180)
    Column("opted_out_at", UTCDateTime, nullable=True),
    Column("inactive_since", UTCDateTime, nullable=True),  # retention clock (art. 168)
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('active', 'inactive')", name="status"),
)
Index("ix_customers_name", customers.c.name)

meters = Table(
    "meters",
    metadata,
    Column("meter_number", String(11), primary_key=True),
    Column(
        "customer_id",
        String(12),
        ForeignKey("customers.customer_id"),
        nullable=False,
    ),
    # STS key data (IEC 62055-41); the decoder key itself is derived, never stored.
    Column("supply_group_code", String(6), nullable=False),
    Column("tariff_index", String(2), nullable=False),
    Column("key_revision", Integer, nullable=False),
    Column("key_type", Integer, nullable=False),
    Column("base_date", Integer, nullable=False),
    # SMS-frame comms key, sealed with AES-GCM under the master key (AAD = meter number).
    Column("comms_key_sealed", LargeBinary, nullable=True),
    Column("comms_key_master_id", String(32), nullable=True),
    Column("comms_key_id", String(32), nullable=True),
    # Frame counters: next counter the hub will use, highest counter seen from the meter,
    # and the replay window bitmap below it (opaque to the store).
    Column("tx_counter", BigInteger, nullable=False),
    Column("rx_counter", BigInteger, nullable=False),
    Column("replay_window", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False),
    Column("state_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_meters_customer_id", meters.c.customer_id)
Index("ix_meters_state", meters.c.state, meters.c.state_at)

meter_states = Table(
    "meter_states",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "meter_number",
        String(11),
        ForeignKey("meters.meter_number"),
        nullable=False,
    ),
    Column("state", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=True),
    Column("detail", Text, nullable=True),
)
Index("ix_meter_states_meter_number_at", meter_states.c.meter_number, meter_states.c.at)

sims = Table(
    "sims",
    metadata,
    Column("sim_id", BigId, primary_key=True, autoincrement=True),
    Column("msisdn", String(16), nullable=False, unique=True),  # normalised +62...
    Column("iccid", String(22), nullable=False, unique=True),
    Column("operator", String(32), nullable=False),
    Column("m2m", Boolean, nullable=False),
    # M2M SIMs are registered to the legal entity's responsible person (5/2021 art. 160, 164).
    Column("responsible_person", String(200), nullable=False),
    # One SIM per meter and one meter per SIM; NULL = not bound (spare or swapped out).
    Column(
        "meter_number",
        String(11),
        ForeignKey("meters.meter_number"),
        nullable=True,
        unique=True,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

sim_swaps = Table(
    "sim_swaps",
    metadata,
    Column("swap_id", BigId, primary_key=True, autoincrement=True),
    Column(
        "meter_number",
        String(11),
        ForeignKey("meters.meter_number"),
        nullable=False,
    ),
    Column("old_sim_id", BigId, ForeignKey("sims.sim_id"), nullable=True),
    Column("new_sim_id", BigId, ForeignKey("sims.sim_id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("decision_note", Text, nullable=True),
)
Index("ix_sim_swaps_meter_number", sim_swaps.c.meter_number, sim_swaps.c.requested_at)
Index("ix_sim_swaps_state", sim_swaps.c.state)

customer_phones = Table(
    "customer_phones",
    metadata,
    Column("msisdn", String(16), primary_key=True),  # normalised +62...
    Column(
        "customer_id",
        String(12),
        ForeignKey("customers.customer_id"),
        nullable=False,
    ),
    Column("pin_hash", String(200), nullable=True),  # hmac1$ (crypto/pin_mac.py) or older scrypt$
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    # Lock-outs in a row (reset by a right PIN): each one lasts twice as long as the last.
    Column("lockouts", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_customer_phones_customer_id", customer_phones.c.customer_id)

messages = Table(
    "messages",
    metadata,
    Column("id", String(26), primary_key=True),  # ULID
    Column("direction", String(3), nullable=False),
    Column("flow", String(24), nullable=False),
    Column("peer_msisdn", String(16), nullable=True),  # normalised; NULL if unparseable
    Column("peer_raw", String(32), nullable=True),  # sender/recipient exactly as carried
    Column("meter_number", String(11), nullable=True),
    Column("customer_id", String(12), nullable=True),
    Column("gateway_id", String(64), nullable=True),
    Column("modem_id", String(64), nullable=True),
    Column("kind", String(32), nullable=True),  # frame type or customer command
    Column("body", Text, nullable=True),  # customer-visible text (never tokens in clear)
    Column("raw_pdu", LargeBinary, nullable=True),
    Column("state", String(16), nullable=False),
    Column("state_at", UTCDateTime, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("reject_reason", Text, nullable=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("correlation_id", String(64), nullable=True),
    Column("in_reply_to", String(26), nullable=True),
    Column("transaction_id", String(26), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("direction IN ('in', 'out')", name="direction"),
)
Index("ix_messages_peer_msisdn_created_at", messages.c.peer_msisdn, messages.c.created_at)
Index("ix_messages_meter_number_created_at", messages.c.meter_number, messages.c.created_at)
Index("ix_messages_customer_id_created_at", messages.c.customer_id, messages.c.created_at)
Index("ix_messages_transaction_id", messages.c.transaction_id)
Index("ix_messages_correlation_id", messages.c.correlation_id)
Index("ix_messages_state_state_at", messages.c.state, messages.c.state_at)
Index("ix_messages_created_at", messages.c.created_at)

message_states = Table(
    "message_states",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(26), ForeignKey("messages.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Text, nullable=True),
)
Index("ix_message_states_message_id_at", message_states.c.message_id, message_states.c.at)
Index("ix_message_states_state_at", message_states.c.state, message_states.c.at)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(26), ForeignKey("messages.id"), nullable=False, unique=True),
    Column("destination", String(16), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # what the gateway sends (text or frame)
    Column("gateway_hint", String(64), nullable=True),
    Column("priority", Integer, nullable=False),  # lower first: tokens before notices
    Column("available_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
# The claim (`outbox.claim`: due, unleased or lease run out) seeks the due rows by time on
# either index, so it never reads the rows handed to a gateway and waiting for their send
# results (available_at in the future), however many there are; the few due rows are then
# sorted by priority. The dispatcher's next wake-up (`outbox.next_due`) reads one entry of
# each: min(available_at) of unleased rows, min(lease_until).
# (An index on (priority, available_at) served the ORDER BY instead, and the claim walked
# every row in the outbox to find the due ones.)
Index("ix_outbox_available_at_lease_until", outbox.c.available_at, outbox.c.lease_until)
Index("ix_outbox_lease_until_available_at", outbox.c.lease_until, outbox.c.available_at)

cost_ledger = Table(
    "cost_ledger",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # UNIQUE: a message is charged once however many times it was retried.
    Column("message_id", String(26), ForeignKey("messages.id"), nullable=False, unique=True),
    Column("customer_id", String(12), nullable=True),
    Column("flow", String(24), nullable=False),
    Column("price_version", String(32), nullable=False),
    Column("amount_idr", BigInteger, nullable=False),
    Column("charged_at", UTCDateTime, nullable=False),
)
Index("ix_cost_ledger_customer_id_charged_at", cost_ledger.c.customer_id, cost_ledger.c.charged_at)
Index("ix_cost_ledger_charged_at", cost_ledger.c.charged_at)

transactions = Table(
    "transactions",
    metadata,
    Column("id", String(26), primary_key=True),  # ULID
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("meter_number", String(11), ForeignKey("meters.meter_number"), nullable=False),
    Column("customer_id", String(12), ForeignKey("customers.customer_id"), nullable=False),
    Column("phone_msisdn", String(16), nullable=True),
    Column("amount_idr", BigInteger, nullable=False),
    Column("kwh", String(16), nullable=True),  # decimal as text: exact on both dialects
    Column("token_sealed", LargeBinary, nullable=True),  # AES-GCM, AAD = transaction id
    Column("token_master_id", String(32), nullable=True),
    Column("token_masked", String(32), nullable=True),  # e.g. "1234 **** **** **** 7890"
    Column("pln_ref", String(64), nullable=True),
    Column("switcher_ref", String(64), nullable=True),
    Column("stan", String(12), nullable=True),
    Column("response_code", String(4), nullable=True),
    Column("meter_outcome", String(32), nullable=True),
    Column("state", String(16), nullable=False),
    Column("state_at", UTCDateTime, nullable=False),
    Column("request_message_id", String(26), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
Index(
    "ix_transactions_meter_number_created_at",
    transactions.c.meter_number,
    transactions.c.created_at,
)
Index(
    "ix_transactions_customer_id_created_at", transactions.c.customer_id, transactions.c.created_at
)
Index("ix_transactions_state_state_at", transactions.c.state, transactions.c.state_at)
Index("ix_transactions_pln_ref", transactions.c.pln_ref)
Index("ix_transactions_switcher_ref", transactions.c.switcher_ref)
Index("ix_transactions_created_at", transactions.c.created_at)
# BELI's duplicate check: this phone's purchases in the last `hub.duplicate_window_s`
# (with created_at alone it read every phone's purchases in the window).
Index(
    "ix_transactions_phone_msisdn_created_at",
    transactions.c.phone_msisdn,
    transactions.c.created_at,
)

transaction_states = Table(
    "transaction_states",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_id", String(26), ForeignKey("transactions.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Text, nullable=True),
)
Index(
    "ix_transaction_states_transaction_id_at",
    transaction_states.c.transaction_id,
    transaction_states.c.at,
)
Index("ix_transaction_states_state_at", transaction_states.c.state, transaction_states.c.at)

alarms = Table(
    "alarms",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("meter_number", String(11), nullable=False),
    Column("code", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("meter_time", UTCDateTime, nullable=True),  # the meter's clock (may drift)
    Column("received_at", UTCDateTime, nullable=False),  # arrival at the hub
    Column("message_id", String(26), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("cleared_at", UTCDateTime, nullable=True),
)
Index("ix_alarms_meter_number_received_at", alarms.c.meter_number, alarms.c.received_at)
Index("ix_alarms_received_at", alarms.c.received_at)

telemetry_readings = Table(
    "telemetry_readings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("meter_number", String(11), nullable=False),
    Column("meter_time", UTCDateTime, nullable=True),  # the meter's clock (may drift)
    Column("received_at", UTCDateTime, nullable=False),  # arrival at the hub
    Column("credit_kwh", String(16), nullable=True),  # decimals as text
    Column("total_kwh", String(16), nullable=True),
    Column("values", JSON, nullable=True),
    Column("message_id", String(26), nullable=True),
    Column("ap2t_batch", String(32), nullable=True),  # which daily batch carried it
)
Index(
    "ix_telemetry_readings_meter_number_received_at",
    telemetry_readings.c.meter_number,
    telemetry_readings.c.received_at,
)
Index("ix_telemetry_readings_received_at", telemetry_readings.c.received_at)

helpdesk_items = Table(
    "helpdesk_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # complaint | inquiry | incident
    Column("category", String(32), nullable=True),  # e.g. charge (15-working-day target)
    Column("customer_id", String(12), nullable=True),
    Column("meter_number", String(11), nullable=True),
    Column("msisdn", String(16), nullable=True),
    Column("subject", String(200), nullable=False),
    Column("notes", Text, nullable=True),
    Column("state", String(16), nullable=False),  # open | in_progress | resolved | closed
    Column("assigned_to", String(64), nullable=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    # The purchase an incident is about, if any (migration 0004).
    Column("transaction_id", String(26), nullable=True),
)
Index("ix_helpdesk_items_state_opened_at", helpdesk_items.c.state, helpdesk_items.c.opened_at)
Index("ix_helpdesk_items_transaction_id", helpdesk_items.c.transaction_id)
Index("ix_helpdesk_items_customer_id", helpdesk_items.c.customer_id)
Index("ix_helpdesk_items_meter_number", helpdesk_items.c.meter_number)
Index("ix_helpdesk_items_msisdn", helpdesk_items.c.msisdn)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),  # e.g. disclose.customer, sim_swap.approve
    Column("subject_type", String(32), nullable=True),
    Column("subject_id", String(64), nullable=True),
    Column("detail", JSON, nullable=True),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_subject", audit_log.c.subject_type, audit_log.c.subject_id)
Index("ix_audit_log_actor_at", audit_log.c.actor, audit_log.c.at)

sla_events = Table(
    "sla_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("metric", String(48), nullable=False),  # e.g. report_to_p2apst, token_to_network
    Column("subject_type", String(32), nullable=True),
    Column("subject_id", String(64), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("duration_ms", BigInteger, nullable=True),
    Column("target_ms", BigInteger, nullable=True),
    Column("met", Boolean, nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
)
Index("ix_sla_events_metric_started_at", sla_events.c.metric, sla_events.c.started_at)
Index("ix_sla_events_subject", sla_events.c.subject_type, sla_events.c.subject_id)

TABLE_NAMES: tuple[str, ...] = tuple(metadata.tables)
