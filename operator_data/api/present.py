"""How values are shown: WIB times, masked phone numbers, what each role may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from operator_data.api.auth import Role

# Western Indonesia Time has no daylight saving: a fixed offset is exact.
WIB = timezone(timedelta(hours=7), "WIB")


def wib(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S")


def wib_day_start(moment: datetime) -> datetime:
    """Midnight WIB of the WIB day containing `moment`, as UTC."""
    local = moment.astimezone(WIB)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def wib_month_start(moment: datetime) -> datetime:
    local = moment.astimezone(WIB)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def mask_msisdn(number: str | None) -> str | None:
    """'+6281234567890' -> '+62812*****890': enough to match what a caller reads out."""
    if number is None:
        return None
    if len(number) <= 7:
        return number[:2] + "*" * (len(number) - 2)
    return number[:6] + "*" * (len(number) - 9) + number[-3:]


def phone_for(role: Role, number: str | None) -> str | None:
    """Helpdesk staff see phone numbers masked; supervisors and admins in full."""
    return number if role.allows(Role.SUPERVISOR) else mask_msisdn(number)


def mask_name(name: str) -> str:
    """'Budi Santoso' -> 'Budi S.': helpdesk confirms identity without the full name."""
    parts = name.split()
    if len(parts) <= 1:
        return name[:1] + "***" if name else name
    return parts[0] + " " + " ".join(p[:1] + "." for p in parts[1:])


def name_for(role: Role, name: str) -> str:
    return name if role.allows(Role.SUPERVISOR) else mask_name(name)
