"""The P2APST link over TLS with a client certificate, with real handshakes on 127.0.0.1
against the simulator, and certificates made here (a CA, P2APST's server certificate, the
switcher's client certificate, and a stranger's CA that signs nothing P2APST trusts)."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import logging
import ssl
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from firmware_protocol import sts
from operator_data.cli.main import app
from p2apst_adapter import messages
from p2apst_adapter.client import Link, LinkLost, P2apstClient, SqliteStore
from p2apst_adapter.client.tls import TlsConfigError, TlsFiles, client_context, server_context
from p2apst_adapter.dialect import Framing, Mti, NetworkCode, ResponseCode
from p2apst_adapter.model import WIB, PurchaseRequest
from p2apst_adapter.simulator import P2apstSimulator, demo_meters
from tests.p2apst_adapter.test_link import FAST

pytestmark = pytest.mark.timeout(30)

METERS = demo_meters(2)
METER = METERS[1]


@dataclasses.dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class Authority:
    """A CA that writes PEM files into `directory`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / f"{name}-ca.crt"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, common_name: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("p2apst.test"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        issued = Issued(
            self.directory / f"{common_name}.crt", self.directory / f"{common_name}.key"
        )
        issued.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        issued.key.chmod(0o600)
        return issued


@dataclasses.dataclass(frozen=True)
class Pki:
    pln: Authority
    stranger: Authority
    server: Issued
    switcher: Issued
    impostor: Issued  # a client certificate from the stranger's CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    pln, stranger = Authority(directory, "pln"), Authority(directory, "stranger")
    return Pki(
        pln,
        stranger,
        server=pln.issue("p2apst", server=True),
        switcher=pln.issue("switcher-1", server=False),
        impostor=stranger.issue("impostor", server=False),
    )


@pytest.fixture
async def sim(pki: Pki) -> AsyncIterator[P2apstSimulator]:
    tls = server_context(TlsFiles(pki.pln.ca_file, pki.server.cert, pki.server.key))
    async with P2apstSimulator(METERS, seed=3, tls=tls) as simulator:
        yield simulator


def switcher_tls(pki: Pki) -> ssl.SSLContext:
    return client_context(TlsFiles(pki.pln.ca_file, pki.switcher.cert, pki.switcher.key))


async def sign_on(link: Link) -> str | None:
    message = messages.network_request(NetworkCode.SIGN_ON, "000000000001", datetime.now(WIB))
    return (await link.request(message, 5.0)).response_code


async def test_purchase_end_to_end_over_tls(sim: P2apstSimulator, pki: Pki, tmp_path: Path) -> None:
    settings = dataclasses.replace(FAST, tls=switcher_tls(pki))
    async with (
        SqliteStore(tmp_path / "journal.sqlite") as store,
        P2apstClient(
            "127.0.0.1", sim.port, journal=store.journal, outbox=store.outbox, settings=settings
        ) as client,
    ):
        result = await client.purchase(
            PurchaseRequest(
                switcher_reference="REF-TLS-1",
                meter_number=METER.meter_number,
                customer_id=METER.customer_id,
                amount=Decimal(100_000),
                admin_fee=Decimal(2500),
            )
        )
    assert result.paid and result.token is not None
    assert sts.decode(result.token, METER.decoder_key()).crc_ok
    assert [paid.switcher_reference for paid in sim.ledger.paid()] == ["REF-TLS-1"]
    assert sim.client_names == ["switcher-1"]  # P2APST saw the switcher's certificate


async def test_the_link_reports_tls_and_checks_the_server_name(
    sim: P2apstSimulator, pki: Pki
) -> None:
    link = await Link.open("127.0.0.1", sim.port, Framing.LENGTH_PREFIX, 5.0, tls=switcher_tls(pki))
    try:
        assert link.tls_version in {"TLSv1.2", "TLSv1.3"}
        assert await sign_on(link) == ResponseCode.SUCCESS
    finally:
        await link.close()
    # The name given instead of the host must be on the certificate too.
    named = await Link.open(
        "127.0.0.1",
        sim.port,
        Framing.LENGTH_PREFIX,
        5.0,
        tls=switcher_tls(pki),
        server_hostname="p2apst.test",
    )
    await named.close()
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        await Link.open(
            "127.0.0.1",
            sim.port,
            Framing.LENGTH_PREFIX,
            5.0,
            tls=switcher_tls(pki),
            server_hostname="p2apst.elsewhere.test",
        )


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
async def test_a_client_without_a_valid_certificate_is_refused(
    sim: P2apstSimulator, pki: Pki, who: str
) -> None:
    files = (
        TlsFiles(pki.pln.ca_file)
        if who == "no certificate"
        else TlsFiles(pki.pln.ca_file, pki.impostor.cert, pki.impostor.key)
    )
    # TLS 1.2 refuses in the handshake; TLS 1.3 sends the refusal after it, so the first
    # request finds the link closed. Either way nothing reaches P2APST's application.
    with pytest.raises((ssl.SSLError, LinkLost)):
        link = await Link.open(
            "127.0.0.1", sim.port, Framing.LENGTH_PREFIX, 5.0, tls=client_context(files)
        )
        try:
            await sign_on(link)
        finally:
            await link.close()
    assert sim.connections_accepted == 0 and sim.received(Mti.NETWORK_REQUEST.value) == 0


async def test_plain_tcp_against_a_tls_server_is_refused(sim: P2apstSimulator) -> None:
    link = await Link.open("127.0.0.1", sim.port, Framing.LENGTH_PREFIX, 5.0)
    try:
        with pytest.raises(LinkLost):
            await sign_on(link)
    finally:
        await link.close()
    assert sim.connections_accepted == 0


async def test_the_switcher_refuses_a_server_its_ca_did_not_sign(
    sim: P2apstSimulator, pki: Pki
) -> None:
    wrong_ca = client_context(TlsFiles(pki.stranger.ca_file, pki.switcher.cert, pki.switcher.key))
    with pytest.raises(ssl.SSLCertVerificationError):
        await Link.open("127.0.0.1", sim.port, Framing.LENGTH_PREFIX, 5.0, tls=wrong_ca)


def test_unusable_tls_files_are_named(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match="no such file"):
        client_context(TlsFiles(tmp_path / "missing-ca.crt"))
    with pytest.raises(TlsConfigError, match="go together"):
        TlsFiles(pki.pln.ca_file, pki.switcher.cert)
    # A key that is not the certificate's.
    with pytest.raises(TlsConfigError, match="TLS files"):
        client_context(TlsFiles(pki.pln.ca_file, pki.switcher.cert, pki.impostor.key))
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(TlsConfigError):
        client_context(TlsFiles(not_pem))
    with pytest.raises(TlsConfigError, match="needs its certificate"):
        server_context(TlsFiles(pki.pln.ca_file))


def test_simulator_cli_needs_every_tls_file(pki: Pki) -> None:
    result = CliRunner().invoke(app, ["p2apst-sim", "--tls-cert", str(pki.server.cert)])
    assert result.exit_code == 2 and "--tls-key" in result.stderr
    args = ["--tls-cert", str(pki.server.cert), "--tls-key", str(pki.impostor.key)]
    result = CliRunner().invoke(app, ["p2apst-sim", *args, "--tls-client-ca", str(pki.pln.ca_file)])
    assert result.exit_code == 2 and "TLS" in result.stderr


async def test_simulator_process_serves_tls(pki: Pki, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from operator_data.cli.main import main; main()",
        "p2apst-sim",
        "--port",
        "0",
        "--tls-cert",
        str(pki.server.cert),
        "--tls-key",
        str(pki.server.key),
        "--tls-client-ca",
        str(pki.pln.ca_file),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        text = b""
        while not text.rstrip().endswith(b"}") or text.count(b"{") != text.count(b"}"):
            line = await process.stdout.readline()
            assert line, "the simulator ended before its banner"
            text += line
        banner = json.loads(text)
        assert banner["tls"] is True
        port = int(banner["listening"].rsplit(":", 1)[1])
        meter = banner["meters"][0]
        settings = dataclasses.replace(FAST, tls=switcher_tls(pki))
        async with (
            SqliteStore(tmp_path / "j.sqlite") as store,
            P2apstClient("127.0.0.1", port, journal=store.journal, settings=settings) as client,
        ):
            found = await client.inquiry(meter_number=meter["meter_number"])
            assert found.customer_name == meter["customer_name"]
    finally:
        process.terminate()
        await process.wait()


class _Awaited(logging.Handler):
    """Sets `seen` once a record containing `text` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


async def test_a_refused_client_says_why_and_never_signs_on(
    sim: P2apstSimulator, pki: Pki, tmp_path: Path
) -> None:
    impostor = client_context(TlsFiles(pki.pln.ca_file, pki.impostor.cert, pki.impostor.key))
    settings = dataclasses.replace(FAST, tls=impostor, reconnect_initial=60.0)
    watch = _Awaited("does P2APST accept our client certificate?")
    logger = logging.getLogger("p2apst_adapter.client.client")
    logger.addHandler(watch)
    logger.setLevel(logging.INFO)
    try:
        async with (
            SqliteStore(tmp_path / "journal.sqlite") as store,
            P2apstClient("127.0.0.1", sim.port, journal=store.journal, settings=settings) as client,
        ):
            await watch.seen.wait()
            assert not client.connected and client.sign_ons == 0
    finally:
        logger.removeHandler(watch)
    assert sim.connections_accepted == 0 and sim.ledger.paid() == []
