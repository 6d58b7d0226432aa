"""One validated settings model for the hub, from a TOML file and `PINTAR_*` environment.

Precedence: explicit arguments > environment (`PINTAR_`, nested with `__`, e.g.
`PINTAR_DATABASE__URL`) > TOML file (`--config FILE` or `PINTAR_CONFIG`) > defaults.
Secrets (the master key) come only from the environment or from a file that only its
owner can read; a master key written into the TOML file is refused.
"""

from __future__ import annotations

import ssl
import tomllib
from datetime import UTC, datetime, time
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.config import TomlSettingsSource, read_secret_file
from gateway.mqtt import MqttSettings, Topics
from gateway.msisdn import is_short_code
from operator_data.crypto.master_key import (
    MasterKey,
    MasterKeyError,
    load_master_key_file,
    parse_master_key,
)
from operator_data.duties.schedule import parse_time_of_day
from operator_data.logs import LogFormat
from operator_data.store.states import Flow
from p2apst_adapter.client.tls import TlsConfigError, TlsFiles, client_context
from p2apst_adapter.dialect.default import P2APST
from p2apst_adapter.dialect.framing import Framing
from p2apst_adapter.dialect.loader import DialectFileError, load_dialect
from p2apst_adapter.dialect.table import Dialect

# Numbers that must never be a service code (5/2021): police, emergency, fire, SAR, ...
EMERGENCY_NUMBERS = frozenset({"110", "112", "113", "115", "117", "119"})

# Legal minimum retention (see docs/store.md for the citations).
MIN_USAGE_RECORDS_MONTHS = 3  # every SMS, per customer: 5/2021 art. 222(m)
MIN_CUSTOMER_DATA_MONTHS_AFTER_INACTIVE = 3  # 5/2021 art. 168
MIN_SLA_YEARS_AFTER_FINANCIAL_YEAR = 1  # kept through the next financial year: art. 222(m)
MIN_COMPLAINT_MONTHS = 3  # QoS standard art. 4(6)


class SettingsError(ValueError):
    """The configuration is unusable; the message lists every offending field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file pintar.db under data_dir.",
    )
    echo: bool = False
    busy_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 10_000
    statement_timeout_ms: Annotated[int, Field(ge=0, le=3_600_000)] = Field(
        default=30_000,
        description="PostgreSQL only: longest a statement may run (0: no limit).",
    )
    lock_timeout_ms: Annotated[int, Field(ge=0, le=3_600_000)] = Field(
        default=10_000,
        description="PostgreSQL only: longest a statement may wait for a lock (0: no limit).",
    )
    probe_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(
        default=2.0, description="/readyz and the store watch: a write probe slower is a stall."
    )
    probe_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=10.0, description="How often the hub's store watch probes the store."
    )
    failures_alarm: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=3, description="Store calls failing in a row before the store watch alarms."
    )
    alarm_reminder_s: Annotated[float, Field(ge=10, le=86_400)] = Field(
        default=600.0, description="While the store stays down, an ERROR reminder this often."
    )
    ready_inbound_age_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=300.0, description="/readyz: oldest unprocessed inbound SMS may be this old."
    )
    ready_outbox_age_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=300.0, description="/readyz: oldest due outbox row may be this overdue."
    )
    pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full",
        description=(
            "SQLite only. full: every commit is on disk before it returns (survives power "
            "loss; one fsync per commit). normal: survives a crash of the process, the last "
            "commits may be lost on power loss."
        ),
    )
    sqlite_inline: bool = Field(
        default=True,
        description=(
            "SQLite only. Run statements that cannot wait (inside a transaction, in WAL "
            "mode) on the event loop instead of handing each to aiosqlite's thread; BEGIN, "
            "COMMIT and PRAGMAs still go to the thread. Off: every statement is handed over."
        ),
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite and postgresql URLs are supported")
        return value

    def effective_url(self, data_dir: Path) -> str:
        if self.url is not None:
            return self.url
        return f"sqlite+aiosqlite:///{(data_dir / 'pintar.db').resolve()}"


class SecuritySettings(_Section):
    master_key: SecretStr | None = Field(
        default=None, description="64 hex digits; environment only (PINTAR_SECURITY__MASTER_KEY)."
    )
    master_key_file: Path | None = Field(
        default=None, description="File holding the 64 hex digits; must be mode 0600 or 0400."
    )

    @model_validator(mode="after")
    def _one_valid_source(self) -> Self:
        if self.master_key is not None and self.master_key_file is not None:
            raise ValueError("give master_key or master_key_file, not both")
        try:
            self.load_master_key()
        except MasterKeyError as error:
            raise ValueError(str(error)) from None
        return self

    def load_master_key(self) -> MasterKey | None:
        """The master key, or None when none is configured (then nothing can be sealed)."""
        if self.master_key is not None:
            return parse_master_key(self.master_key.get_secret_value())
        if self.master_key_file is not None:
            return load_master_key_file(self.master_key_file)
        return None


class ServiceSettings(_Section):
    short_code: str = Field(default="87000", description="Customers' SMS access code, 8ABCD.")
    default_language: str = Field(default="id", pattern="^(id|en)$")

    @field_validator("short_code")
    @classmethod
    def _short_code(cls, value: str) -> str:
        if value in EMERGENCY_NUMBERS:
            raise ValueError(f"{value} is a reserved emergency number")
        if not is_short_code(value):
            raise ValueError(f"{value!r} is not a legal-entity access code 8ABCD (5/2021 art. 139)")
        return value


class PinPolicy(_Section):
    length: Annotated[int, Field(ge=4, le=8)] = 6
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    lockout_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 30
    # Each lock-out in a row (no right PIN between) lasts twice as long as the one before,
    # up to this: ~20 guesses a day instead of ~144 with a fixed 30 minutes.
    lockout_max_minutes: Annotated[int, Field(ge=1, le=30 * 24 * 60)] = 24 * 60
    # From this lock-out in a row on, each one opens a helpdesk incident (a guessing attack).
    lockout_alarm_after: Annotated[int, Field(ge=1, le=100)] = 3


class SlaTargets(_Section):
    report_to_p2apst_s: Annotated[float, Field(gt=0)] = 5.0  # after the meter's answer
    token_to_network_s: Annotated[float, Field(gt=0)] = 10.0  # token SMS handed over
    meter_answer_s: Annotated[float, Field(gt=0)] = 300.0  # meter answers the token SMS
    # P2APST answers a submitted purchase; above [p2apst] response_timeout (30 s) advices
    # are already running, so that is the natural bound.
    p2apst_response_s: Annotated[float, Field(gt=0)] = 30.0
    receipt_to_customer_s: Annotated[float, Field(gt=0)] = 10.0  # receipt SMS handed over
    # Non-transaction data to AP2T at least once a day (0066 art. 4(2)): never less often.
    ap2t_batch_interval_h: Annotated[float, Field(gt=0, le=24)] = 24.0


class RetentionPolicy(_Section):
    usage_records_months: int = MIN_USAGE_RECORDS_MONTHS
    customer_data_months_after_inactive: int = MIN_CUSTOMER_DATA_MONTHS_AFTER_INACTIVE
    sla_financial_years_after: int = MIN_SLA_YEARS_AFTER_FINANCIAL_YEAR
    complaint_months: int = MIN_COMPLAINT_MONTHS

    @model_validator(mode="after")
    def _legal_minimums(self) -> Self:
        minimums = {
            "usage_records_months": (MIN_USAGE_RECORDS_MONTHS, "5/2021 art. 222(m)"),
            "customer_data_months_after_inactive": (
                MIN_CUSTOMER_DATA_MONTHS_AFTER_INACTIVE,
                "5/2021 art. 168",
            ),
            "sla_financial_years_after": (
                MIN_SLA_YEARS_AFTER_FINANCIAL_YEAR,
                "5/2021 art. 222(m)",
            ),
            "complaint_months": (MIN_COMPLAINT_MONTHS, "QoS standard art. 4(6)"),
        }
        problems = [
            f"{name}={getattr(self, name)} is below the legal minimum {minimum} ({source})"
            for name, (minimum, source) in minimums.items()
            if getattr(self, name) < minimum
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Ap2tSettings(_Section):
    """Where the daily AP2T batch goes: an HTTP receiver (url + token) or a directory drop."""

    url: str | None = Field(default=None, description="AP2T upload endpoint (HTTP POST).")
    token: SecretStr | None = Field(
        default=None, description="Bearer token for `url`; environment (PINTAR_AP2T__TOKEN)."
    )
    directory: Path | None = Field(default=None, description="Drop directory AP2T collects.")
    out_dir: Path = Field(
        default=Path("ap2t"), description="Where batches are written (relative: under data_dir)."
    )

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.url is not None and self.directory is not None:
            raise ValueError("give ap2t.url or ap2t.directory, not both")
        if self.url is not None and self.token is None:
            raise ValueError("ap2t.url needs ap2t.token")
        return self


class HubSettings(_Section):
    """The hub's workflows: what customers may buy, how long duplicates are remembered,
    how often a silent meter gets its token again, and the P2APST push endpoint's token."""

    denominations_idr: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)] = Field(
        default_factory=lambda: [20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000]
    )
    duplicate_window_s: Annotated[float, Field(ge=0)] = 600.0
    token_resends: Annotated[int, Field(ge=0, le=10)] = 2
    push_token: SecretStr | None = Field(
        default=None,
        description="Bearer token P2APST uses to push tokens (PINTAR_HUB__PUSH_TOKEN).",
    )
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    command_backlog: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=2000,
        description=(
            "Customer SMS waiting to be answered at most; beyond it the hub takes no more "
            "events from the transports until the backlog shrinks (back-pressure: the "
            "events wait, unacknowledged, in the gateways' spools)."
        ),
    )
    sweep_interval_s: Annotated[float, Field(gt=0)] = 5.0
    # Accepted purchases still without P2APST's answer this long, and reports P2APST has
    # not acknowledged this long, are opened as helpdesk incidents (once each).
    stuck_purchase_after_s: Annotated[float, Field(gt=0)] = 900.0
    stuck_report_after_s: Annotated[float, Field(gt=0)] = 3600.0
    # With several workers the sweep must not restart a purchase another worker is still
    # driving: only purchases untouched this long are taken up again.
    purchase_restart_after_s: Annotated[float, Field(ge=0)] = 30.0
    # A send the transport took but never answered (no send result: lost between the
    # broker and a gateway's spool, say) is offered to the transport again after this.
    send_result_timeout_s: Annotated[float, Field(gt=0)] = 600.0
    # The short code is no reflector (hub/reply_budget.py): answers per number and window,
    # answers of the whole hub per window, and how often an unregistered number or an SMS
    # that looks like a reply (an auto-responder's) is answered at most.
    reply_budget_per_msisdn: Annotated[int, Field(ge=1)] = 30
    reply_budget_window_s: Annotated[float, Field(gt=0)] = 3600.0
    reply_budget_global: Annotated[int, Field(ge=1)] = 20_000
    reply_budget_global_window_s: Annotated[float, Field(gt=0)] = 60.0
    unregistered_reply_every_s: Annotated[float, Field(ge=0)] = 86_400.0
    reply_like_every_s: Annotated[float, Field(ge=0)] = 86_400.0
    counter_ledger_file: Path | None = Field(
        default=Path("counter-ledger.db"),
        description=(
            "High-water marks of hub -> meter frame counters, kept outside the database so "
            "a restored backup never reuses an AES-GCM IV (relative: under data_dir). Never "
            "restore it with the database; unset only for throw-away databases."
        ),
    )

    def counter_ledger_path(self, data_dir: Path) -> Path | None:
        if self.counter_ledger_file is None:
            return None
        return data_dir / self.counter_ledger_file  # an absolute path stays as it is


class PriceVersion(_Section):
    """What one SMS of each flow costs the customer from `effective_from` on (IDR)."""

    version: Annotated[str, Field(min_length=1, max_length=32)]
    effective_from: datetime
    prices_idr: dict[Flow, Annotated[int, Field(ge=0)]]

    @field_validator("effective_from")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("effective_from needs a timezone (e.g. 2025-01-01T00:00:00+07:00)")
        return value.astimezone(UTC)

    @field_validator("prices_idr")
    @classmethod
    def _every_flow(cls, value: dict[Flow, int]) -> dict[Flow, int]:
        missing = [flow.value for flow in Flow if flow not in value]
        if missing:
            raise ValueError(f"no price for flow(s) {', '.join(missing)}")
        return value


def _default_prices() -> list[PriceVersion]:
    # Placeholder: the real figures come from the operator agreement (configuration).
    return [
        PriceVersion(
            version="v0",
            effective_from=datetime(2014, 1, 1, tzinfo=UTC),
            prices_idr=dict.fromkeys(Flow, 0),
        )
    ]


class PriceTable(_Section):
    versions: Annotated[list[PriceVersion], Field(min_length=1)] = Field(
        default_factory=_default_prices
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError("price versions must have distinct names")
        starts = [v.effective_from for v in self.versions]
        if any(a >= b for a, b in pairwise(starts)):
            raise ValueError("price versions must be in strictly increasing effective_from order")
        return self

    def at(self, when: datetime) -> PriceVersion:
        """The price version in force at `when` (an aware datetime)."""
        current = None
        for version in self.versions:
            if version.effective_from <= when:
                current = version
        if current is None:
            raise LookupError(f"no price version in force at {when.isoformat()}")
        return current


class MqttBusSettings(_Section):
    """The broker the hub workers reach the gateways through (docs/bus.md)."""

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=1883, description="1883 plain (loopback only), 8883 with TLS."
    )
    username: str | None = Field(default="hub", description="Broker user of the hub workers.")
    password: SecretStr | None = Field(
        default=None, description="Environment only (PINTAR_MQTT__PASSWORD)."
    )
    password_file: Path | None = Field(
        default=None, description="File whose first line is the password; mode 0600 or 0400."
    )
    tls_ca_file: Path | None = Field(default=None, description="CA certificate; turns TLS on.")
    tls_cert_file: Path | None = Field(default=None, description="Client certificate (optional).")
    tls_key_file: Path | None = Field(default=None, description="Key of the client certificate.")
    topic_root: str = Field(
        default="pintar/v1", pattern=r"^[^#+$]+$", description="The same on hub and gateways."
    )
    group: str = Field(
        default="hub",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Shared-subscription group: each event goes to one worker of the group.",
    )
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    max_backoff: Annotated[float, Field(gt=0)] = 30.0
    sends_per_message: Annotated[int, Field(ge=1, le=256)] = Field(
        default=32,
        description=(
            "SMS one bus message to a gateway carries at most when the hub sends several at "
            "once (a batch document); 1 sends each alone, as gateways from before batched "
            "sends expect (set it during an upgrade from such a version: docs/bus.md)."
        ),
    )
    failover_after: Annotated[float, Field(ge=0)] = Field(
        default=300.0,
        description=(
            "Seconds an SMS offered again waits for the gateway that had it while that "
            "gateway is offline, before another gateway sends it (it may then arrive twice)."
        ),
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("a client certificate needs tls_ca_file (TLS)")
        self.secret()
        return self

    def secret(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return read_secret_file(self.password_file)
        return None

    def mqtt_settings(self) -> MqttSettings:
        def text(path: Path | None) -> str | None:
            return None if path is None else str(path)

        return MqttSettings(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.secret(),
            tls_ca_file=text(self.tls_ca_file),
            tls_cert_file=text(self.tls_cert_file),
            tls_key_file=text(self.tls_key_file),
            topics=Topics(root=self.topic_root),
            keepalive=self.keepalive,
            max_backoff=self.max_backoff,
            sends_per_message=self.sends_per_message,
        )


class P2apstSettings(_Section):
    """PLN's P2APST host. Without `host` the hub refuses purchases with a clear reply."""

    host: str | None = Field(default=None, description="P2APST address; unset: no purchases.")
    port: Annotated[int, Field(ge=1, le=65535)] = 5000
    framing: Framing = Framing.LENGTH_PREFIX
    connect_timeout: Annotated[float, Field(gt=0)] = 10.0
    response_timeout: Annotated[float, Field(gt=0)] = 30.0
    advice_timeout: Annotated[float, Field(gt=0)] = 30.0
    advice_interval: Annotated[float, Field(gt=0)] = 5.0
    echo_interval: Annotated[float, Field(gt=0)] = 60.0
    report_retry_interval: Annotated[float, Field(gt=0)] = 5.0
    link_down_alarm_s: Annotated[float, Field(ge=0)] = Field(
        default=120.0,
        description="A link down (not signed on) this long opens a helpdesk incident.",
    )
    report_window: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=32,
        description="Token reports (2620) in flight at once, each awaiting its own 2630.",
    )
    resend_unreceived: Annotated[int, Field(ge=0, le=100)] = Field(
        default=3,
        description=(
            "Times a purchase is sent again when an advice says its 2200 never arrived "
            "(0063), before it is declined to the customer; 0 declines at once."
        ),
    )
    stan_lanes: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=1,
        description="Hub workers signed on as this switcher: each draws STANs in its own lane.",
    )
    stan_lane: Annotated[int, Field(ge=0, lt=1000)] = Field(
        default=0, description="This worker's lane, 0 to stan_lanes - 1 (one per worker)."
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="CA of P2APST's server certificate; turns TLS on (off: plain TCP).",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="The switcher's client certificate (PEM) P2APST checks."
    )
    tls_key_file: Path | None = Field(
        default=None, description="Private key of the client certificate; mode 0600 or 0400."
    )
    tls_server_name: str | None = Field(
        default=None,
        description="Name P2APST's certificate must carry, when not `host` (e.g. an IP host).",
    )
    dialect_file: Path | None = Field(
        default=None,
        description=(
            "This switcher's ISO 8583 dialect (TOML or JSON, a copy of the shipped "
            "pln-default.toml edited to what it sends); unset: the shipped default."
        ),
    )

    @field_validator("dialect_file")
    @classmethod
    def _dialect_loads(cls, value: Path | None) -> Path | None:
        # Read at start-up so that a faulty file stops the hub with the key at fault,
        # not the first purchase.
        if value is not None:
            try:
                load_dialect(value)
            except DialectFileError as error:
                raise ValueError(f"dialect_file {error}") from None
        return value

    def dialect(self) -> Dialect:
        """The dialect this switcher speaks: `dialect_file`'s, or the shipped default."""
        return P2APST if self.dialect_file is None else load_dialect(self.dialect_file)

    @model_validator(mode="after")
    def _lane_in_range(self) -> Self:
        if self.stan_lane >= self.stan_lanes:
            raise ValueError(f"stan_lane {self.stan_lane} must be below stan_lanes")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_ca_file is None and (
            self.tls_cert_file is not None or self.tls_server_name is not None
        ):
            raise ValueError("a client certificate or tls_server_name needs tls_ca_file (TLS)")
        if self.tls_key_file is not None and self.tls_key_file.exists():
            mode = self.tls_key_file.stat().st_mode & 0o777
            if mode & 0o077:
                raise ValueError(
                    f"tls_key_file {self.tls_key_file} is readable by others "
                    f"(mode {mode:04o}); chmod 600 it"
                )
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """The link's TLS context, None for plain TCP; raises SettingsError for files that
        cannot be used (missing, not PEM, a key that does not match its certificate)."""
        if self.tls_ca_file is None:
            return None
        try:
            return client_context(TlsFiles(self.tls_ca_file, self.tls_cert_file, self.tls_key_file))
        except TlsConfigError as error:
            raise SettingsError(f"p2apst TLS: {error}") from None


class WebSettings(_Section):
    """The helpdesk web app and P2APST's token push endpoint, served by each hub worker."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    login_max_failures: Annotated[int, Field(ge=1, le=100)] = Field(
        default=5,
        description=(
            "Consecutive failed logins for one username from one client address (an IPv6 "
            "/64) that lock that name at that address (in the database, shared by every "
            "worker); other addresses are not locked. A successful login resets the count."
        ),
    )
    login_lockout_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = Field(
        default=15,
        description=(
            "How long a locked (username, address) is refused; `pintar users unlock` ends it early."
        ),
    )
    login_account_slowdown_after: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=10,
        description=(
            "Consecutive failed logins for one username, from all addresses, after which "
            "addresses that have failed for it get one password check per growing delay."
        ),
    )
    login_account_max_delay_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=60,
        description="The longest of those delays (1, 2, 4 ... seconds up to this).",
    )
    login_ip_max_failures: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=20,
        description=(
            "Failed logins one client address (an IPv6 /64) may make per window, per "
            "worker process; beyond that its attempts are refused without a password check."
        ),
    )
    login_ip_window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = Field(
        default=15, description="The sliding window of login_ip_max_failures."
    )
    docs: Literal["off", "authenticated", "public"] = Field(
        default="authenticated",
        description=(
            "Who may read /docs, /redoc, /openapi.json and /metrics: nobody (404), any "
            "logged-in user or API key, or anyone (the demo)."
        ),
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = Field(
        default=64 * 1024,
        description="Largest request body any route takes; a larger one is answered 413 unread.",
    )
    max_push_body_bytes: Annotated[int, Field(ge=512, le=1024 * 1024)] = Field(
        default=4 * 1024,
        description="Largest body of P2APST's token push (POST /p2apst/tokens).",
    )


class LoggingSettings(_Section):
    """How `pintar hub` logs (stderr, the journal): text for people, JSON for a collector."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Logging threshold; `pintar hub --log-level` overrides it."
    )
    format: LogFormat = Field(
        default="text",
        description=(
            "text, or json: one object per line with time (UTC), level, logger, message and "
            "exception (operator_data/logs.py); PINTAR_LOGGING__FORMAT=json."
        ),
    )


class DutiesSettings(_Section):
    """The hub's scheduled duties (operator_data/duties/; docs/runbook.md, "What runs
    when"): each once per cluster and WIB day, at a WIB time "HH:MM", or "off". A run covers
    the WIB day before the one it runs on."""

    enabled: bool = Field(default=True, description="Off: this worker runs no duty.")
    ap2t_deliver_at: str = Field(
        default="00:30", description="Export the previous day's AP2T batch and deliver it."
    )
    ap2t_deadline_at: str = Field(
        default="06:00",
        description="The previous day's AP2T batch not acknowledged by then: an alarm.",
    )
    retention_purge_at: str = Field(default="02:00", description="The retention purge.")
    sla_report_at: str = Field(default="00:15", description="The previous day's SLA report.")
    sms_costs_at: str = Field(default="00:20", description="The previous day's SMS costs.")
    complaints_report_at: str = Field(
        default="00:25",
        description=(
            "The complaint report of the previous day's month (QoS percentages and the "
            "disruption figures), rewritten daily: final on the next month's first day."
        ),
    )
    complaints_dir: Path = Field(
        default=Path("reports/complaints"),
        description="Monthly complaint reports (relative: under data_dir).",
    )
    reports_dir: Path = Field(
        default=Path("reports/sla"), description="SLA reports (relative: under data_dir)."
    )
    sms_costs_dir: Path = Field(
        default=Path("sms-costs"), description="SMS cost files (relative: under data_dir)."
    )
    retention_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    ap2t_lookback_days: Annotated[int, Field(ge=0, le=31)] = Field(
        default=7,
        description=(
            "The AP2T run also delivers days this far back that have no batch yet (missed "
            "while no worker ran) or a revision not yet acknowledged."
        ),
    )
    retry_first_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=60.0, description="A failed duty is tried again after this, then doubling."
    )
    retry_max_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=3600.0, description="The longest wait between tries."
    )
    alarm_after: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3, description="Failures in a row before an ERROR and a helpdesk incident."
    )

    @field_validator(
        "ap2t_deliver_at", "ap2t_deadline_at", "retention_purge_at", "sla_report_at",
        "sms_costs_at", "complaints_report_at",
    )  # fmt: skip
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        parse_time_of_day(value)  # its ValueError names the value and the format
        return value.strip().lower()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.retry_max_s < self.retry_first_s:
            raise ValueError("retry_max_s must be at least retry_first_s")
        deliver, deadline = self.time_of("ap2t_deliver_at"), self.time_of("ap2t_deadline_at")
        if deliver is not None and deadline is not None and deadline <= deliver:
            raise ValueError(
                f"ap2t_deadline_at {self.ap2t_deadline_at} must be after ap2t_deliver_at "
                f"{self.ap2t_deliver_at} (both WIB, the same day)"
            )
        return self

    def time_of(self, field: str) -> time | None:
        """The WIB time of one of the *_at fields (None: off)."""
        return parse_time_of_day(str(getattr(self, field)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PINTAR_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path("pintar-data")
    database: DatabaseSettings = DatabaseSettings()
    security: SecuritySettings = SecuritySettings()
    service: ServiceSettings = ServiceSettings()
    pin: PinPolicy = PinPolicy()
    sla: SlaTargets = SlaTargets()
    retention: RetentionPolicy = RetentionPolicy()
    prices: PriceTable = PriceTable()
    hub: HubSettings = HubSettings()
    ap2t: Ap2tSettings = Ap2tSettings()
    mqtt: MqttBusSettings = MqttBusSettings()
    p2apst: P2apstSettings = P2apstSettings()
    web: WebSettings = WebSettings()
    logging: LoggingSettings = LoggingSettings()
    duties: DutiesSettings = DutiesSettings()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingsError(f"config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"config file {path}: {error}") from None
    security = data.get("security")
    if isinstance(security, dict) and "master_key" in security:
        raise SettingsError(
            f"config file {path}: security.master_key must not be written in the config file; "
            "use PINTAR_SECURITY__MASTER_KEY or security.master_key_file (mode 0600)"
        )
    mqtt = data.get("mqtt")
    if isinstance(mqtt, dict) and "password" in mqtt:
        raise SettingsError(
            f"config file {path}: mqtt.password must not be written in the config file; "
            "use PINTAR_MQTT__PASSWORD or mqtt.password_file (mode 0600)"
        )
    return data


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "settings"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, the TOML file, the environment and `overrides`, validated.

    Raises SettingsError naming every bad field.
    """
    data = _read_toml(config_file) if config_file is not None else {}

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlSettingsSource(settings_cls, data))

    try:
        return _FromFile(**overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
