"""Settings of one gateway node (`pintar gateway --config FILE`), validated.

Precedence: environment (`PINTAR_GATEWAY_`, nested with `__`, e.g.
`PINTAR_GATEWAY_MQTT__HOST`) > TOML file > defaults. Secrets (the MQTT password, the SMPP
password) come only from the environment (`PINTAR_GATEWAY_MQTT__PASSWORD`,
`PINTAR_GATEWAY_SMPP__PASSWORD`) or from a file that group and others cannot read
(`password_file`, mode 0600/0400); a password written into the TOML file is refused.
`deploy/gateway.example.toml` shows every setting.
"""

from __future__ import annotations

import stat
import tomllib
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.at.config import ModemConfig
from gateway.mqtt import MqttSettings, Topics
from gateway.pool import PoolConfig
from gateway.smpp import LongMessages, SmppSettings

ENV_PREFIX = "PINTAR_GATEWAY_"
_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # one MQTT topic level, also the broker username


class GatewayConfigError(ValueError):
    """The configuration is unusable; the message names every offending field."""


def read_secret_file(path: Path) -> str:
    """The first line of a secret file that only its owner may read (mode 0600 or 0400)."""
    try:
        info = path.stat()
    except OSError as error:
        raise ValueError(f"secret file {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"secret file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ValueError(
            f"secret file {path} has mode {stat.S_IMODE(info.st_mode):04o}: "
            "group/others must have no access (chmod 600)"
        )
    return path.read_text(encoding="utf-8").splitlines()[0] if info.st_size else ""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _WithPassword(_Section):
    password: SecretStr | None = Field(
        default=None, description="Environment only; never in the TOML file."
    )
    password_file: Path | None = Field(
        default=None, description="File whose first line is the password; mode 0600 or 0400."
    )

    @model_validator(mode="after")
    def _one_readable_source(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        self.secret()
        return self

    def secret(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return read_secret_file(self.password_file)
        return None


class MqttSection(_WithPassword):
    """The broker the hub reaches this gateway through."""

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=1883, description="1883 plain (local only), 8883 with TLS."
    )
    username: str | None = Field(
        default=None, description="Broker user; default: the gateway's name (the ACL uses it)."
    )
    tls_ca_file: Path | None = Field(
        default=None, description="CA certificate; setting it turns TLS on."
    )
    tls_cert_file: Path | None = Field(default=None, description="Client certificate (optional).")
    tls_key_file: Path | None = Field(default=None, description="Key of the client certificate.")
    topic_root: str = Field(
        default="pintar/v1", description="Root of the topic tree; the same on hub and gateways."
    )
    keepalive: Annotated[int, Field(ge=5, le=3600)] = Field(
        default=30, description="MQTT keep-alive, seconds."
    )
    session_expiry: Annotated[int, Field(ge=0)] = Field(
        default=3600,
        description="Seconds the broker keeps sends queued for this gateway while it is away.",
    )
    max_backoff: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Longest wait between reconnect attempts, seconds."
    )
    redeliver_after: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="The older name of the top-level redeliver_after (still honoured).",
    )
    events_per_message: Annotated[int, Field(ge=1, le=256)] = Field(
        default=32,
        description=(
            "Events one bus message carries at most when several are waiting (a batch "
            "document); 1 sends each alone, as hub workers from before batches expect "
            "(set it during an upgrade from such a version: docs/bus.md)."
        ),
    )

    @model_validator(mode="after")
    def _tls_pairs(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("a client certificate needs tls_ca_file (TLS)")
        return self

    def settings(self, gateway: str) -> MqttSettings:
        def text(path: Path | None) -> str | None:
            return None if path is None else str(path)

        return MqttSettings(
            host=self.host,
            port=self.port,
            username=self.username or gateway,
            password=self.secret(),
            tls_ca_file=text(self.tls_ca_file),
            tls_cert_file=text(self.tls_cert_file),
            tls_key_file=text(self.tls_key_file),
            topics=Topics(root=self.topic_root),
            keepalive=self.keepalive,
            session_expiry=self.session_expiry,
            max_backoff=self.max_backoff,
            events_per_message=self.events_per_message,
        )


class ModemSection(_Section):
    """One GSM modem on a serial port."""

    port: str = Field(description="Serial device, e.g. /dev/serial/by-id/usb-...-if00.")
    name: str = Field(default="", description="Label in events and logs; default: the port.")
    baudrate: Annotated[int, Field(gt=0)] = Field(default=115200, description="Serial speed.")
    pin: str | None = Field(
        default=None, pattern=r"^\d{4,8}$", description="SIM PIN if the SIM asks for one."
    )
    smsc: str | None = Field(default=None, description="SMSC number, when the SIM's is wrong.")
    command_timeout: Annotated[float, Field(gt=0)] = Field(
        default=10.0, description="Seconds an AT command may take."
    )
    send_timeout: Annotated[float, Field(gt=0)] = Field(
        default=35.0, description="Seconds AT+CMGS may take to answer."
    )
    registration_timeout: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="Seconds to wait for network registration at start-up."
    )
    storage_poll_interval: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="Seconds between sweeps of the SIM storage for missed SMS."
    )
    store_then_send: bool = Field(
        default=True,
        description=(
            "Send by AT+CMGW then AT+CMSS, so that after a crash or a hang mid-send the stored "
            "copy's status (STO SENT / STO UNSENT) tells whether the SMS went out; set false "
            "only for a modem without AT+CMGW/AT+CMSS (it then sends with AT+CMGS, and an SMS "
            "in flight at a crash may be sent twice)."
        ),
    )

    def modem_config(self) -> ModemConfig:
        return ModemConfig(
            port=self.port,
            name=self.name,
            baudrate=self.baudrate,
            pin=self.pin,
            smsc=self.smsc,
            command_timeout=self.command_timeout,
            send_timeout=self.send_timeout,
            registration_timeout=self.registration_timeout,
            storage_poll_interval=self.storage_poll_interval,
            store_then_send=self.store_then_send,
        )


class PoolSection(_Section):
    """How the modem pool schedules and retries (see gateway/pool/policy.py)."""

    min_interval: Annotated[float, Field(ge=0)] = Field(
        default=6.0, description="Per modem: seconds between the starts of two sends."
    )
    max_attempts: Annotated[int, Field(ge=1, le=50)] = Field(
        default=6, description="Attempts per message over all modems before it fails."
    )
    retry_delay: Annotated[float, Field(ge=0)] = Field(
        default=10.0, description="Seconds before a failed message is tried again."
    )
    reprobe_max: Annotated[float, Field(gt=0)] = Field(
        default=600.0, description="Longest wait between re-probes of a modem out of service."
    )
    stored_wait: Annotated[float, Field(ge=0)] = Field(
        default=300.0,
        description=(
            "Seconds an SMS whose send was cut short (crash, hang) waits for the modem that "
            "stored it to say whether it went out, before another modem sends it again."
        ),
    )

    signal_interval: Annotated[float, Field(ge=0)] = Field(
        default=60.0,
        description=(
            "Per modem: seconds between re-reads of the signal (AT+CSQ, between sends) for "
            "the hub's status page and alerts; 0 reads it at start-up only."
        ),
    )

    def pool_config(self) -> PoolConfig:
        return PoolConfig(
            min_interval=self.min_interval,
            max_attempts=self.max_attempts,
            retry_delay=self.retry_delay,
            reprobe_max=self.reprobe_max,
            stored_wait=self.stored_wait,
            signal_interval=self.signal_interval,
        )


class SmppSection(_WithPassword):
    """An SMPP 3.4 transceiver link to the operator's SMSC (instead of modems)."""

    host: str = Field(description="SMSC host name or address.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(description="SMSC port (often 2775).")
    system_id: str = Field(max_length=15, description="ESME account name given by the operator.")
    system_type: str = Field(default="", max_length=12, description="As the operator asks.")
    source_addr: str = Field(
        default="", max_length=20, description="Our number or short code; empty: SMSC's choice."
    )
    source_addr_ton: Annotated[int, Field(ge=0, le=6)] = Field(
        default=0, description="TON of source_addr: 1 international, 3 network specific, 5 alnum."
    )
    source_addr_npi: Annotated[int, Field(ge=0, le=18)] = Field(
        default=0, description="NPI of source_addr: 1 ISDN/E.164."
    )
    window: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=10, description="submit_sm outstanding at most (the operator's window)."
    )
    enquire_link_interval: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Seconds between enquire_link keep-alives."
    )
    response_timeout: Annotated[float, Field(gt=0)] = Field(
        default=10.0, description="Seconds to wait for a response before the link is reset."
    )
    throttle_backoff: Annotated[float, Field(gt=0)] = Field(
        default=1.0, description="First pause after ESME_RTHROTTLED/ESME_RMSGQFUL; doubles."
    )
    throttle_backoff_max: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Longest throttling pause, seconds."
    )
    reconnect_backoff_max: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="Longest wait between reconnect attempts, seconds."
    )
    long_messages: LongMessages = Field(
        default=LongMessages.UDH,
        description="udh: split with concatenation headers; payload: message_payload TLV.",
    )
    receipt_retention_days: Annotated[float, Field(gt=0)] = Field(
        default=7.0, description="Days an SMSC message id is kept for matching its receipt."
    )
    reassembly_timeout: Annotated[float, Field(gt=0)] = Field(
        default=600.0,
        description="Seconds to wait for the missing parts of a multipart inbound message.",
    )
    receipts_path: Path | None = Field(
        default=None,
        description="SQLite file: SMSC ids → messages, and inbound parts until whole; "
        "default: next to the spool.",
    )

    def smpp_settings(self, name: str) -> SmppSettings:
        return SmppSettings(
            host=self.host,
            port=self.port,
            system_id=self.system_id,
            password=self.secret() or "",
            system_type=self.system_type,
            name=name,
            source_addr=self.source_addr,
            source_addr_ton=self.source_addr_ton,
            source_addr_npi=self.source_addr_npi,
            window=self.window,
            enquire_link_interval=self.enquire_link_interval,
            response_timeout=self.response_timeout,
            throttle_backoff=self.throttle_backoff,
            throttle_backoff_max=self.throttle_backoff_max,
            reconnect_backoff_max=self.reconnect_backoff_max,
            long_messages=self.long_messages,
            receipt_retention=timedelta(days=self.receipt_retention_days),
            reassembly_timeout=timedelta(seconds=self.reassembly_timeout),
        )


class CarrierKind(StrEnum):
    MODEMS = "modems"
    SMPP = "smpp"


class GatewayConfig(BaseSettings):
    """One gateway node: its name, its spool, its carrier and its broker."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    name: str = Field(
        pattern=_NAME,
        description="The gateway's name: its MQTT topics pintar/v1/gw/<name>/..., its broker "
        "username and the `gateway` field of its events. Unique per deployment.",
    )
    spool_path: Path = Field(
        default=Path("gateway-spool.db"),
        description="SQLite spool (events until acked, outbound SMS until final).",
    )
    carrier: CarrierKind = Field(
        default=CarrierKind.MODEMS, description="modems (the [[modems]] list) or smpp ([smpp])."
    )
    log_level: str = Field(
        default="INFO",
        pattern="^(DEBUG|INFO|WARNING|ERROR)$",
        description="Logging threshold (logs go to stderr / the journal).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text, or json: one object per line (time, level, logger, message, "
        "exception) for a log collector.",
    )
    redeliver_after: Annotated[float, Field(gt=0)] = Field(
        default=30.0,
        description="Seconds an event handed to the hub may go unacknowledged before the "
        "gateway delivers it again (the hub deduplicates by event id).",
    )
    spool_retention_hours: Annotated[float, Field(ge=72)] = Field(
        default=72.0,
        description="Hours a final outbound SMS (its id and recipient; its text is blanked "
        "at once) and its parts' references stay in the spool; at least the 72 h a status "
        "report is matched within.",
    )
    housekeeping_interval: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0,
        description="Seconds between rounds that purge the spool and checkpoint every "
        "durable file's WAL (how long blanked text may linger in a -wal file).",
    )
    mqtt: MqttSection = Field(default_factory=MqttSection, description="The broker.")
    modems: list[ModemSection] = Field(default_factory=list, description="Modems (modems mode).")
    pool: PoolSection = Field(default_factory=PoolSection, description="Modem scheduling.")
    smpp: SmppSection | None = Field(default=None, description="The SMSC link (smpp mode).")

    @model_validator(mode="after")
    def _carrier_configured(self) -> Self:
        if self.carrier is CarrierKind.MODEMS:
            if not self.modems:
                raise ValueError("carrier = 'modems' needs at least one [[modems]] entry")
            labels = [m.name or m.port for m in self.modems]
            if len(set(labels)) != len(labels):
                raise ValueError("modem names (or ports) must be unique")
        elif self.smpp is None:
            raise ValueError("carrier = 'smpp' needs an [smpp] section")
        return self

    @model_validator(mode="after")
    def _one_redelivery_interval(self) -> Self:
        older = self.mqtt.redeliver_after
        if (
            older is not None
            and "redeliver_after" in self.model_fields_set
            and older != self.redeliver_after
        ):
            raise ValueError(
                f"redeliver_after ({self.redeliver_after}) and mqtt.redeliver_after ({older}) "
                "disagree; set only redeliver_after"
            )
        return self

    @property
    def event_redeliver_after(self) -> float:
        """The spool's re-delivery interval: `redeliver_after`, or `mqtt.redeliver_after`
        where an older config sets only that (re-delivery moved from the MQTT bridge to the
        spool, and one interval governs it)."""
        if self.mqtt.redeliver_after is not None and "redeliver_after" not in self.model_fields_set:
            return self.mqtt.redeliver_after
        return self.redeliver_after

    @property
    def journal_path(self) -> Path:
        """Raw PDUs taken from modems until the spool holds their events (next to the spool)."""
        return self.spool_path.with_name(self.spool_path.stem + "-inbound.db")

    @property
    def receipts_path(self) -> Path:
        if self.smpp is not None and self.smpp.receipts_path is not None:
            return self.smpp.receipts_path
        return self.spool_path.with_name(self.spool_path.stem + "-smsc-ids.db")


class TomlSettingsSource(PydanticBaseSettingsSource):
    """Values read from a TOML file, ranked below the environment (the hub's settings use
    it too)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise GatewayConfigError(f"config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise GatewayConfigError(f"config file {path}: {error}") from None
    for section in ("mqtt", "smpp"):
        table = data.get(section)
        if isinstance(table, dict) and "password" in table:
            raise GatewayConfigError(
                f"config file {path}: {section}.password must not be written in the config "
                f"file; use {ENV_PREFIX}{section.upper()}__PASSWORD or {section}.password_file "
                "(mode 0600)"
            )
    return data


def load_gateway_config(path: Path | None = None) -> GatewayConfig:
    """The configuration from defaults, the TOML file and the environment, validated.

    Raises GatewayConfigError naming every bad field.
    """
    data = _read_toml(path) if path is not None else {}

    class _FromFile(GatewayConfig):
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
        return _FromFile()  # type: ignore[call-arg]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "config"
            problems.append(f"{where}: {item['msg']}")
        raise GatewayConfigError("; ".join(problems)) from None
