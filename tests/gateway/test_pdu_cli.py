"""`pintar pdu decode|encode` through the real Typer app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from operator_data.cli.main import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, dict[str, object] | None, str]:
    result = runner.invoke(app, list(args))
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, document, result.stderr


def test_decode_deliver() -> None:
    code, document, _ = _run(
        "pdu", "decode", "06917228195339040B917228214365F700003130805120618005D4F29C2E03"
    )
    assert code == 0
    assert document == {
        "type": "deliver",
        "sender": "+27821234567",
        "encoding": "gsm7",
        "text": "Test2",
        "concat": None,
        "timestamp": "2013-03-08T13:02:16+00:00",
        "smsc": "+2782913593",
        "smsc_part_assumed": True,
    }


def test_decode_status_report_bare_tpdu() -> None:
    code, document, _ = _run("pdu", "decode", "06D60B911326880736F4111011719551401110117195714000")
    assert code == 0
    assert document is not None
    assert document["type"] == "status-report"
    assert document["message_reference"] == 214
    assert document["status"] == 0
    assert document["discharge_time"] == "2011-01-11T16:59:17+00:00"
    assert document["smsc_part_assumed"] is False


def test_encode_then_decode_8bit_with_status_report() -> None:
    code, document, _ = _run(
        "pdu", "encode", "--to", "+6281234567890", "--data-hex", "00ff10", "--status-report"
    )
    assert code == 0
    assert document is not None
    parts = document["pdus"]
    assert isinstance(parts, list)
    [part] = parts
    assert part["tpdu_length"] == len(part["hex"]) // 2 - 1
    code, decoded, _ = _run("pdu", "decode", part["hex"])
    assert decoded is not None
    assert decoded["type"] == "submit"
    assert decoded["encoding"] == "8bit"
    assert decoded["data_hex"] == "00FF10"
    assert decoded["status_report_requested"] is True


def test_encode_long_text_gives_concatenated_parts() -> None:
    code, document, _ = _run("pdu", "encode", "--to", "081234567890", "--text", "é" * 200)
    assert code == 0
    assert document is not None
    parts = document["pdus"]
    assert isinstance(parts, list)
    assert len(parts) == 2
    decoded = [_run("pdu", "decode", part["hex"])[1] for part in parts]
    assert [d["concat"] for d in decoded if d] == [
        {"ref": 0, "total": 2, "seq": 1},
        {"ref": 0, "total": 2, "seq": 2},
    ]


def test_bad_input_exits_2_with_a_message() -> None:
    code, _, error = _run("pdu", "decode", "0011zz")
    assert code == 2
    assert "not hexadecimal" in error
    code, _, error = _run("pdu", "decode", "0007")
    assert code == 2
    assert "TP-MTI" in error
    code, _, error = _run("pdu", "encode", "--to", "PLN", "--text", "x")
    assert code == 2
    assert "not a phone number" in error
    code, _, error = _run("pdu", "encode", "--to", "+62812", "--text", "x", "--data-hex", "00")
    assert code == 2
    assert "exactly one" in error
