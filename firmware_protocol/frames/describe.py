"""Messages as JSON-ready dictionaries, field by field, for tools and the protocol document."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum, IntFlag
from typing import Any

from firmware_protocol.frames.catalogue import MessageType, encode_payload, spec_for, spec_for_type
from firmware_protocol.frames.errors import FrameError, Reason
from firmware_protocol.frames.fields import Choice, Flags, Kind, ListOf, Scaled, Time
from firmware_protocol.frames.header import Header
from firmware_protocol.frames.messages import Message
from firmware_protocol.frames.reassembly import Received

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


def json_value(value: object) -> JsonValue:
    """Decimal → number, datetime → ISO 8601 UTC with Z, enum → name, flags → list of names."""
    if isinstance(value, IntFlag):
        return [member.name for member in type(value) if member in value and member.name]
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple):
        return [json_value(item) for item in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def message_fields(message: Message) -> dict[str, JsonValue]:
    return {
        field.name: json_value(getattr(message, field.name)) for field in spec_for(message).fields
    }


def header_fields(header: Header) -> dict[str, JsonValue]:
    return {
        "version": header.version,
        "type": header.type.name,
        "direction": header.direction.value,
        "key_id": header.key_id,
        "meter_number": header.meter_number,
        "counter": header.counter,
        "message_id": header.message_id,
        "segment": [header.segment_index, header.segment_count],
    }


def describe(received: Received) -> dict[str, JsonValue]:
    """A complete message with its envelope: what `pintar frame decode` prints."""
    first = received.headers[0]
    return {
        "type": received.type.name,
        "direction": received.direction.value,
        "meter_number": received.meter_number,
        "message_id": received.message_id,
        "key_id": first.key_id,
        "counters": list(received.counters),
        "fields": message_fields(received.message),
    }


def _from_json(kind: Kind, value: object, name: str) -> object:
    """The Python value for `kind` from its JSON form; the kind's encoder checks ranges."""
    if isinstance(kind, Scaled) and isinstance(value, int | float | str):
        if isinstance(value, bool):
            raise FrameError(Reason.BAD_VALUE, f"{name} must be a number", field=name)
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise FrameError(
                Reason.BAD_VALUE, f"{name} {value!r} is not a number", field=name
            ) from None
    if isinstance(kind, Time) and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise FrameError(
                Reason.BAD_VALUE, f"{name} {value!r} is not an ISO 8601 time", field=name
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(kind, Choice) and isinstance(value, str):
        try:
            return kind.enum[value]
        except KeyError:
            names = ", ".join(member.name for member in kind.enum)
            raise FrameError(
                Reason.BAD_VALUE, f"{name} {value!r} is not one of {names}", field=name
            ) from None
    if isinstance(kind, Flags) and isinstance(value, list):
        flags = kind.flags(0)
        for item in value:
            member = kind.flags.__members__.get(item) if isinstance(item, str) else None
            if member is None:
                raise FrameError(
                    Reason.BAD_VALUE, f"{name}: {item!r} is not a {kind.flags.__name__}", field=name
                )
            flags |= member
        return flags
    if isinstance(kind, ListOf) and isinstance(value, list):
        return tuple(_from_json(kind.item, item, f"{name}[{i}]") for i, item in enumerate(value))
    return value  # ints and token strings as they are; anything else fails in the encoder


def message_from_json(type_name: str, fields: Mapping[str, object]) -> Message:
    """The inverse of `message_fields`: build and check a message from its JSON form."""
    try:
        spec = spec_for_type(MessageType[type_name])
    except KeyError:
        raise FrameError(Reason.UNKNOWN_TYPE, f"no message type {type_name!r}") from None
    names = [field.name for field in spec.fields]
    if set(fields) != set(names):
        raise FrameError(
            Reason.BAD_VALUE,
            f"{type_name} has fields {names}, got {sorted(fields)}",
        )
    values: dict[str, Any] = {
        field.name: _from_json(field.kind, fields[field.name], field.name) for field in spec.fields
    }
    message = spec.cls(**values)
    encode_payload(message)  # checks every value now, naming the field at fault
    return message
