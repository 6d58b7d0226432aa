"""docs/protocol.md cannot drift from the code.

The message layouts and enum tables in the document are regenerated here and compared;
the worked examples are parsed out of the document and opened with the real codec, and
their JSON must be what the codec says. To refresh the generated parts after a deliberate
change: `python -m tests.firmware_protocol.test_frames_docs` and paste what it prints.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path

from firmware_protocol import frames as f
from firmware_protocol.frames.fields import (
    Choice,
    Flags,
    Kind,
    ListOf,
    Scaled,
    StsToken,
    Time,
    UInt,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BEGIN, END = "<!-- generated:catalogue:begin -->", "<!-- generated:catalogue:end -->"
EXAMPLE = re.compile(
    r"<!-- example: (?P<name>\w+) -->\s*```text\n(?P<frame>.*?)```\s*```json\n(?P<json>.*?)```",
    re.S,
)
REQUIRED_EXAMPLES = {"TOKEN_DELIVERY", "TOKEN_RESULT", "TELEMETRY", "ALARM"}


def size_of(kind: Kind) -> str:
    if isinstance(kind, UInt | Scaled | Flags):
        return str(kind.size)
    if isinstance(kind, Time):
        return "4"
    if isinstance(kind, Choice):
        return "1"
    if isinstance(kind, StsToken):
        return "9"
    if isinstance(kind, ListOf):
        return f"1 + {size_of(kind.item)}n"
    raise AssertionError(kind)


def render_catalogue() -> str:
    lines: list[str] = []
    for spec in f.CATALOGUE:
        code = f"{int(spec.message_type):#04x}"
        lines += [
            f"#### {code} {spec.message_type.name} ({spec.direction.value}): {spec.summary}",
            "",
        ]
        if not spec.fields:
            lines += ["Empty payload (0 bytes).", ""]
            continue
        lines += [
            "| offset | size | field | encoding | unit | notes |",
            "|---|---|---|---|---|---|",
        ]
        offset, variable = 0, ""
        for field in spec.fields:
            size = size_of(field.kind)
            shown = f"{offset} + {variable}" if variable else str(offset)
            lines.append(
                f"| {shown} | {size} | `{field.name}` | {field.kind.describe} | {field.unit} "
                f"| {field.note} |"
            )
            fixed, _, rest = size.partition(" + ")
            offset += int(fixed)
            variable = rest or variable
        total = f"{offset} + {variable}" if variable else str(offset)
        lines += ["", f"Payload: {total} bytes.", ""]
    enums: list[type[Enum]] = [
        f.TokenOutcome, f.AlarmKind, f.ReadKind, f.ConfigStatus, f.MeterStatus, f.Reason,
    ]  # fmt: skip
    for enum in enums:
        lines += [f"#### {enum.__name__}", "", "| value | name |", "|---|---|"]
        for member in enum:
            value = member.value
            shown = (
                f"`{value!r}`"
                if isinstance(value, str)
                else (f"{value:#06x}" if enum is f.MeterStatus else str(value))
            )
            lines.append(f"| {shown} | {member.name} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def test_catalogue_tables_match_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert generated == render_catalogue(), (
        "regenerate: python -m tests.firmware_protocol.test_frames_docs"
    )


def test_worked_examples_decode_to_what_the_document_says() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = {}
    for match in EXAMPLE.finditer(text):
        lines = [line.split(None, 1) for line in match["frame"].strip().splitlines()]
        values: dict[str, list[str]] = {}
        for name, value in lines:
            values.setdefault(name, []).append(value.strip())
        key = bytes.fromhex(values["key"][0])
        meter = values["meter"][0]
        expected = json.loads(match["json"])
        assert len(values["hex"]) == len(values["text"])
        for form in ("hex", "text"):
            role = f.Role.HUB if expected["direction"] == "up" else f.Role.METER
            receiver = f.Endpoint(role=role, meter_number=meter, keys={expected["key_id"]: key},
                                  key_id=expected["key_id"])  # fmt: skip
            results = [
                receiver.receive(bytes.fromhex(item) if form == "hex" else item)
                for item in values[form]
            ]
            received = results[-1]
            assert received is not None, f"{match['name']} {form} did not complete"
            assert f.describe(received) == expected
            assert received.type.name == match["name"]
            assert f.encode_payload(received.message)[1].hex() == values["payload"][0]
        assert [f.to_text(bytes.fromhex(h)) for h in values["hex"]] == values["text"]
        direction = f.Direction(expected["direction"])
        ivs = [f.iv(int(meter), direction, n).hex() for n in expected["counters"]]
        assert values["iv"] == ivs
        assert len(values["payload"]) == 1
        found[match["name"]] = expected
    assert set(found) >= REQUIRED_EXAMPLES


# -- what the document's examples were made from (run this module to print them) --

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
METER = "14234567890"
EXAMPLES: list[tuple[f.Message, int, int]] = [
    (f.TokenDelivery(reference=31337, token="26456622012185850752"), 5, 7),
    (
        f.TokenResult(
            reference=31337,
            outcome=f.TokenOutcome.ACCEPTED,
            at=datetime(2026, 5, 1, 6, 0, 20, tzinfo=UTC),
            credit_kwh=Decimal("37.85"),
            added_kwh=Decimal("25.60"),
        ),
        12,
        1001,
    ),
    (
        f.Telemetry(
            request_id=0,
            read_at=datetime(2026, 5, 2, tzinfo=UTC),
            energy_kwh=Decimal("1234.56"),
            credit_kwh=Decimal("12.25"),
            voltage_v=Decimal("221.3"),
            power_w=410,
            status=f.MeterStatus(0),
            signal_csq=17,
        ),
        13,
        1002,
    ),
    (
        f.Alarm(
            occurred_at=datetime(2026, 5, 2, 3, 15, tzinfo=UTC),
            kind=f.AlarmKind.COVER_OPEN,
            credit_kwh=Decimal("11.90"),
            status=f.MeterStatus.COVER_OPEN | f.MeterStatus.TAMPER,
        ),
        14,
        1003,
    ),
    (
        f.LoadProfile(
            request_id=8,
            start=datetime(2026, 5, 1, 1, tzinfo=UTC),
            interval_min=60,
            energy_kwh=tuple(Decimal("1210.00") + Decimal("0.35") * n for n in range(20)),
        ),
        15,
        1004,
    ),
]


def render_examples() -> str:
    out: list[str] = []
    for message, counter, message_id in EXAMPLES:
        sealed = f.seal(message, key=KEY, key_id=1, meter_number=METER, counter=counter,
                        message_id=message_id, max_frame=f.TEXT_MAX_FRAME)  # fmt: skip
        endpoint = f.Endpoint(
            role=f.Role.HUB if f.spec_for(message).direction is f.Direction.UP else f.Role.METER,
            meter_number=METER, keys={1: KEY}, key_id=1,
        )  # fmt: skip
        done = [endpoint.receive(frame) for frame in sealed][-1]
        assert done is not None
        name = f.spec_for(message).message_type.name
        out += [f"<!-- example: {name} -->", "```text", f"key   {KEY.hex()}", f"meter {METER}"]
        direction = f.spec_for(message).direction
        out += [
            f"iv    {f.iv(int(METER), direction, f.peek(frame).counter).hex()}" for frame in sealed
        ]
        out.append(f"payload {f.encode_payload(message)[1].hex()}")
        out += [f"hex   {frame.hex()}" for frame in sealed]
        out += [f"text  {f.to_text(frame)}" for frame in sealed]
        out += ["```", "```json", json.dumps(f.describe(done), indent=2), "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render_catalogue())
    print("=" * 40)
    print(render_examples())


def test_byte_by_byte_breakdown_matches_the_first_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("The first example, byte by byte:", 1)[1].split("```")[1]
    lines = [line for line in block.strip().splitlines() if not line.startswith("IV")]
    spelled = "".join(re.match(r"([0-9a-f ]+?)\s{2,}", line)[1].replace(" ", "") for line in lines)  # type: ignore[index]
    first = EXAMPLE.search(text)
    assert first is not None and first["name"] == "TOKEN_DELIVERY"
    hex_line = next(line for line in first["frame"].splitlines() if line.startswith("hex"))
    assert spelled == hex_line.split()[1]
    iv_line = next(line for line in block.splitlines() if line.startswith("IV"))
    assert (
        iv_line.split("=")[1].split("(")[0].replace(" ", "")
        == f.iv(int(METER), f.Direction.DOWN, 5).hex()
    )
