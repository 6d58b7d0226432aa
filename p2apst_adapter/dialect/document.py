"""A decoded message as a JSON-ready document, for inspection tools and logs."""

from __future__ import annotations

from decimal import Decimal

from p2apst_adapter.dialect.default import P2APST
from p2apst_adapter.dialect.errors import IsoError
from p2apst_adapter.dialect.fields import Mti
from p2apst_adapter.dialect.message import IsoMessage
from p2apst_adapter.dialect.response_codes import describe
from p2apst_adapter.dialect.table import Dialect


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _plain_dict(values: dict[str, object]) -> dict[str, object]:
    return {name: _plain(value) for name, value in values.items()}


def message_document(message: IsoMessage, dialect: Dialect = P2APST) -> dict[str, object]:
    """MTI, every field by bit number, and the structured fields split by name.

    Money is written as decimal strings so that no amount passes through a float. What a
    lenient (informational) layout could not read is named under `<bit>_problem`.
    """
    document: dict[str, object] = {"mti": message.mti}
    try:
        document["mti_name"] = Mti(message.mti).name.lower()
    except ValueError:
        document["mti_name"] = None
    document["fields"] = {str(bit): message.fields[bit] for bit in sorted(message.fields)}
    if (amount := message.get(4)) is not None:
        document["amount"] = _plain_dict(dialect.layout("amount").decode(amount))
    if (code := message.get(39)) is not None:
        info = describe(code)
        document["response"] = {
            "code": code,
            "meaning": info.meaning,
            "customer_text": info.customer_text,
        }
    if (bit48 := message.get(48)) is not None:
        layout = dialect.bit48_layout(message.mti, bit48)
        document["bit48_layout"] = layout.name
        document["bit48"] = _plain_dict(layout.decode(bit48))
    if (bit56 := message.get(56)) is not None:
        document["bit56"] = _plain_dict(dialect.layout("original data").decode(bit56))
    if (bit62 := message.get(62)) is not None:
        private = dialect.layout("private data 2")
        document["bit62"] = _plain_dict(private.decode(bit62))
        if (problem := private.problem(bit62)) is not None:
            document["bit62_problem"] = str(problem)
    return document


__all__ = ["IsoError", "message_document"]
