"""Settings of one modem: port, SIM, start-up fall-backs and every timeout (all configurable)."""

from __future__ import annotations

from dataclasses import dataclass

#: `AT+CNMI` variants, most wanted first: store SMS and announce with +CMTI (mt=1), status
#: reports directly as +CDS (ds=1) or stored with +CDSI (ds=2), then without status reports.
CNMI_VARIANTS: tuple[str, ...] = (
    "2,1,0,1,0",
    "2,1,0,2,0",
    "1,1,0,1,0",
    "1,1,0,2,0",
    "2,1,0,0,0",
    "1,1,0,0,0",
)


@dataclass(frozen=True, slots=True)
class ModemConfig:
    port: str
    name: str = ""
    baudrate: int = 115200
    pin: str | None = None
    smsc: str | None = None  # set with AT+CSCA when the SIM's differs
    storages: tuple[str, ...] = ("SM", "ME")  # preference for AT+CPMS
    cnmi_variants: tuple[str, ...] = CNMI_VARIANTS
    probe_timeout: float = 1.0  # a live modem answers AT at once
    probe_attempts: int = 5
    command_timeout: float = 10.0
    prompt_timeout: float = 5.0  # AT+CMGS= → "> "
    send_timeout: float = 35.0  # PDU + Ctrl-Z → +CMGS: <mr> / OK (and AT+CMSS → +CMSS:)
    # Send by AT+CMGW + AT+CMSS (when the pool has a send journal), so that a crash or a
    # hang mid-send can be told from the stored copy's status; False: AT+CMGS (a modem
    # without AT+CMGW/CMSS), where such a send may go out twice.
    store_then_send: bool = True
    pin_ready_attempts: int = 10  # AT+CPIN? polls after entering the PIN
    pin_poll_interval: float = 1.0
    registration_timeout: float = 60.0
    registration_poll_interval: float = 2.0
    storage_poll_interval: float = 60.0  # AT+CPMS? / AT+CMGL=4 sweep
    reset_timeout: float = 2.0  # how long AT+CFUN=1,1 may take to answer (often never)
    reopen_attempts: int = 10  # a USB modem re-enumerates after a reset
    reopen_interval: float = 1.0

    @property
    def label(self) -> str:
        return self.name or self.port
