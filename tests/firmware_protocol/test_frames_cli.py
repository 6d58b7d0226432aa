"""`pintar frame` as a user runs it: JSON on stdout, exit 2 with a message on bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app

runner = CliRunner()
KEY = "000102030405060708090a0b0c0d0e0f"
METER = "14234567890"
# the TOKEN_DELIVERY worked example of docs/protocol.md
HEX = "0100010103507244d2000000050000000700ec39d0cbee315b243fdb45b60a08fad611a3be77ebf9f460ee"
TEXT = "LP1:AQABAQNQckTSAAAABQAAAAcA7DnQy+4xWyQ/20W2Cgj61hGjvnfr+fRg7g=="


def run(*args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, ["frame", *args])
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, document, result.stderr


def decode(*frames: str, key: str = KEY, meter: str = METER, extra: tuple[str, ...] = ()) -> Any:
    return run("decode", "--key", key, "--meter", meter, *extra, *frames)


@pytest.mark.parametrize(
    "frame", [HEX, TEXT, HEX.upper(), " ".join(HEX[i : i + 2] for i in range(0, len(HEX), 2))]
)
def test_decode_token_delivery(frame: str) -> None:
    code, doc, _ = decode(frame)
    assert code == 0
    assert doc == {
        "type": "TOKEN_DELIVERY", "direction": "down", "meter_number": METER, "message_id": 7,
        "key_id": 1, "counters": [5],
        "fields": {"reference": 31337, "token": "26456622012185850752"},
    }  # fmt: skip


def test_encode_then_decode_segments_in_any_order() -> None:
    fields = {
        "request_id": 8, "start": "2026-05-01T01:00:00Z", "interval_min": 60,
        "energy_kwh": [1210.0 + n / 4 for n in range(40)],
    }  # fmt: skip
    code, doc, _ = run(
        "encode", "--key", KEY, "--meter", METER, "--counter", "100", "--message-id", "9",
        "--text", "LOAD_PROFILE", json.dumps(fields),
    )  # fmt: skip
    assert code == 0
    texts = [frame["text"] for frame in doc["frames"]]
    assert [frame["counter"] for frame in doc["frames"]] == [100, 101]
    code, partial, _ = decode(texts[1])
    assert code == 0 and partial["complete"] is False and partial["missing_segments"] == [0]
    code, whole, _ = decode(texts[1], doc["frames"][0]["hex"], extra=("--direction", "up"))
    assert code == 0 and whole["counters"] == [100, 101]
    assert whole["fields"] == fields | {"start": "2026-05-01T01:00:00Z"}


def test_encode_matches_the_documented_example() -> None:
    code, doc, _ = run(
        "encode", "--key", KEY, "--meter", METER, "--counter", "5", "--message-id", "7",
        "--text", "TOKEN_DELIVERY", '{"reference": 31337, "token": "26456622012185850752"}',
    )  # fmt: skip
    assert code == 0 and doc == {"frames": [{"counter": 5, "hex": HEX, "text": TEXT}]}


def _flipped() -> str:
    data = bytearray(bytes.fromhex(HEX))
    data[-1] ^= 1
    return data.hex()


@pytest.mark.parametrize(
    ("frames", "options", "message"),
    [
        ((HEX[:-2] + "zz",), {}, "neither hex"),
        (("",), {}, "neither hex"),
        (("LP1:!!",), {}, "bad text form"),
        ((HEX[:20],), {}, "truncated"),
        ((_flipped(),), {}, "bad tag"),
        ((HEX,), {"--direction": "up"}, "wrong direction"),
        ((HEX,), {"--meter": "14234567891"}, "wrong meter"),
        ((HEX,), {"--meter": "123"}, "11 digits"),
        ((HEX,), {"--key": "00" * 15}, "32 hex digits"),
        ((HEX,), {"--key": "ff" * 16}, "bad tag"),
        ((HEX, HEX), {}, "left over"),
    ],
)
def test_decode_bad_input_exits_2(
    frames: tuple[str, ...], options: dict[str, str], message: str
) -> None:
    settings = {"--key": KEY, "--meter": METER} | options
    code, _, stderr = run("decode", *[x for pair in settings.items() for x in pair], *frames)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("NO_SUCH", "{}"), "no message type"),
        (("PING", "not json"), "not JSON"),
        (("PING", "[]"), "JSON object"),
        (("PING", '{"x": 1}'), "has fields"),
        (("TOKEN_DELIVERY", '{"reference": 1, "token": "123"}'), "20 digits"),
        (("ALARM", '{"occurred_at": "yesterday", "kind": "TAMPER", "credit_kwh": 1, '
                   '"status": []}'), "ISO 8601"),
        (("ALARM", '{"occurred_at": "2026-01-01T00:00:00Z", "kind": "FIRE", "credit_kwh": 1, '
                   '"status": []}'), "not one of"),
        (("ALARM", '{"occurred_at": "2026-01-01T00:00:00Z", "kind": "TAMPER", '
                   '"credit_kwh": 0.001, "status": ["SMOKE"]}'), "SMOKE"),
        (("TELEMETRY", '{"request_id": 0, "read_at": "2026-01-01T00:00:00Z", "energy_kwh": 1,'
                       '"credit_kwh": 1, "voltage_v": 220, "power_w": 1, "status": [],'
                       '"signal_csq": 40}'), "signal_csq 40"),
    ],
)  # fmt: skip
def test_encode_bad_input_exits_2(args: tuple[str, str], message: str) -> None:
    code, _, stderr = run(
        "encode", "--key", KEY, "--meter", METER, "--counter", "1", "--message-id", "1", *args
    )
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr
