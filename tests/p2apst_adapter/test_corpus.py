"""The shipped dialect against real-world PLN ISO 8583 messages (see corpus/README.md).

Informational fields (bit 62, 63) are read leniently; bit 4, bit 39 and every money and
token sub-field of bit 48 are read strictly and checked against the values they carry.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from p2apst_adapter import dialect
from p2apst_adapter.dialect import IsoError, IsoMessage
from p2apst_adapter.messages import amount_of, read_purchase_response
from p2apst_adapter.model import PurchaseRequest

CORPUS = Path(__file__).parent / "corpus"
MONEY = ("admin_fee", "stamp_duty", "vat", "ppj", "instalment", "power_purchase")


def sample(name: str) -> IsoMessage:
    return dialect.decode((CORPUS / name).read_bytes())


def test_every_corpus_file_is_named_in_the_readme_with_its_source() -> None:
    readme = (CORPUS / "README.md").read_text()
    files = sorted(path.name for path in CORPUS.glob("*.iso"))
    assert len(files) == 7
    for name in files:
        assert f"`{name}`" in readme
    assert "sureonly88/pedami-payment" in readme
    assert "d7590f32803cb7086c875007c1d06246908754fa" in readme


def test_every_sample_decodes_or_is_refused_with_a_field_named() -> None:
    for path in sorted(CORPUS.glob("*.iso")):
        try:
            message = dialect.decode(path.read_bytes())
        except IsoError as error:
            assert error.field is not None, path.name
            continue
        try:
            dialect.message_document(message)
        except IsoError as error:
            assert error.field is not None and error.field.startswith("48"), path.name


def test_the_real_prepaid_2210_is_accepted_with_its_token_and_money() -> None:
    message = sample("pedami-prepaid-2210-purchase-response.iso")
    assert message.mti == "2210"
    assert message.response_code == "0000"
    assert message.fields[2] == "99502"
    assert amount_of(message) == Decimal(100000)
    assert dialect.bit48_layout(message.mti, message.fields[48]) is dialect.PURCHASE_RESPONSE
    bit48 = dialect.decode_bit48(message.mti, message.fields[48])
    assert bit48["switcher_id"] == "ST145S3"  # alphanumeric: the old dialect refused it
    assert bit48["meter_number"] == "01428800700"
    assert bit48["customer_id"] == "511288007004"
    assert bit48["token"] == "06743895158066886991"
    assert bit48["kwh"] == Decimal("154.55")
    assert bit48["power_va"] == 900
    assert bit48["vending_receipt"] == "06993732"
    assert bit48["switcher_reference"] == "0SYM2121674574878107B9832E9B7395"
    # The money the receipt shows adds up to what the customer paid (bit 4).
    assert sum(bit48[name] for name in MONEY) == amount_of(message)  # type: ignore[misc]
    assert bit48["power_purchase"] == Decimal(93500)


def test_its_bit_62_keeps_the_unsold_amount_after_total_repeat_zero() -> None:
    message = sample("pedami-prepaid-2210-purchase-response.iso")
    private = dialect.PRIVATE_DATA_2.decode(message.fields[62])
    assert private == {
        "distribution_code": "51",
        "service_unit": "51128",
        "service_unit_phone": "022-1234567",
        "max_kwh": 120,
        "total_repeat": 0,
        "unsold_amounts": [Decimal(100000)],
    }
    assert dialect.PRIVATE_DATA_2.problem(message.fields[62]) is None


def test_the_client_reads_the_real_2210_into_a_purchase_result() -> None:
    message = sample("pedami-prepaid-2210-purchase-response.iso")
    request = PurchaseRequest(
        switcher_reference="0SYM2121674574878107B9832E9B7395",
        meter_number="01428800700",
        amount=Decimal(100000),
    )
    result = read_purchase_response(message, request, via_advice=False)
    assert result.token == "06743895158066886991"
    assert result.kwh == Decimal("154.55")
    assert result.info_text.startswith("Rincian tagihan")


def test_the_real_2230_advice_response_carries_the_token() -> None:
    message = sample("pedami-prepaid-2230-advice-response.iso")
    assert message.mti == "2230"
    bit48 = dialect.decode_bit48(message.mti, message.fields[48])
    assert bit48["switcher_id"] == "ST145S3"
    assert bit48["token"] == "18511982055129350594"
    assert bit48["kwh"] == Decimal("22.31")
    assert sum(bit48[name] for name in MONEY) == amount_of(message) == Decimal(20000)  # type: ignore[misc]
    private = dialect.PRIVATE_DATA_2.decode(message.fields[62])
    assert private["total_repeat"] == 0
    assert private["unsold_amounts"] == []


def test_a_malformed_bit_62_never_costs_the_purchase() -> None:
    message = sample("pedami-prepaid-2210-purchase-response.iso")
    broken = message.with_fields(f62=message.fields[62] + "12X")  # a partial, bad amount
    request = PurchaseRequest("0SYM2121674574878107B9832E9B7395", "01428800700", Decimal(100000))
    result = read_purchase_response(broken, request, via_advice=False)
    assert result.token == "06743895158066886991"
    document = dialect.message_document(broken)
    assert document["bit62"]["unsold_amounts"] == ["100000"]  # type: ignore[index]
    assert "62" in str(document["bit62_problem"])


def test_a_broken_token_or_amount_is_still_refused() -> None:
    message = sample("pedami-prepaid-2210-purchase-response.iso")
    bit48 = message.fields[48]
    bad_token = bit48[:-20] + "0674389515806688699X"
    with pytest.raises(IsoError) as caught:
        dialect.decode_bit48(message.mti, bad_token)
    assert caught.value.field == "48.token"
    assert caught.value.offset == 221
    bad_kwh = bit48[:210] + "2000001545A" + bit48[221:]
    with pytest.raises(IsoError) as caught:
        dialect.decode_bit48(message.mti, bad_kwh)
    assert caught.value.field == "48.kwh"


@pytest.mark.parametrize(
    ("name", "mti", "product", "amount"),
    [
        ("pedami-postpaid-2210-payment-response.iso", "2210", "99501", Decimal(28000)),
        ("pedami-nontaglis-2210-payment-response.iso", "2210", "99504", Decimal(272500)),
        ("pedami-nontaglis-2410-reversal-response.iso", "2410", "99504", Decimal(34000)),
    ],
)
def test_other_products_decode_strictly_and_their_bit_48_is_refused_clearly(
    name: str, mti: str, product: str, amount: Decimal
) -> None:
    message = sample(name)
    assert (message.mti, message.fields[2], message.response_code) == (mti, product, "0000")
    assert amount_of(message) == amount
    assert message.fields[48].startswith("ST145S3")
    with pytest.raises(IsoError) as caught:
        dialect.decode_bit48(message.mti, message.fields[48])
    assert caught.value.field is not None and caught.value.field.startswith("48")


def test_the_reversal_response_names_its_original_in_bit_56() -> None:
    message = sample("pedami-nontaglis-2410-reversal-response.iso")
    assert dialect.ORIGINAL_DATA.decode(message.fields[56]) == {
        "original_mti": "2200",
        "original_stan": "000000000001",
        "original_datetime": "20170309144324",
        "original_bank_code": "4510017",
    }


def test_the_postpaid_inquiry_request_and_its_bad_length_twin() -> None:
    message = sample("pedami-postpaid-2100-inquiry-request.iso")
    assert message.fields[48] == "ST145S3541120114555"
    assert message.fields[33] == "4510216"
    with pytest.raises(IsoError) as caught:
        sample("pedami-postpaid-2100-inquiry-request-bad-length.iso")
    assert caught.value.field == "48"
