"""TLS for the P2APST link, for operators without a leased line or VPN: the switcher checks
P2APST's certificate against a given CA (and its name), and proves itself with a client
certificate. Plain TCP stays the default (a leased line is its own protection)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


class TlsConfigError(ValueError):
    """A CA, certificate or key file that cannot be used (missing, unreadable, mismatched)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_file: Path  # the CA that signed the peer's certificate
    cert_file: Path | None = None  # our certificate (chain), PEM
    key_file: Path | None = None  # its private key, PEM

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise TlsConfigError("a TLS certificate and its key go together")


def _load(context: ssl.SSLContext, files: TlsFiles) -> ssl.SSLContext:
    # TLS 1.2 at least: older versions have known breaks and no PLN peer needs them.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for path in (files.ca_file, files.cert_file, files.key_file):
        # Checked first: OpenSSL's own error for a missing CA file names no file.
        if path is not None and not path.is_file():
            raise TlsConfigError(f"{path}: no such file")
    try:
        context.load_verify_locations(cafile=str(files.ca_file))
        if files.cert_file is not None and files.key_file is not None:
            context.load_cert_chain(str(files.cert_file), str(files.key_file))
    except FileNotFoundError as error:
        raise TlsConfigError(f"{error.filename}: no such file") from None
    except PermissionError as error:
        raise TlsConfigError(f"{error.filename}: not readable") from None
    except ssl.SSLError as error:
        what = f"CA {files.ca_file}, certificate {files.cert_file}"
        raise TlsConfigError(f"TLS files ({what}): {error.reason or error}") from None
    return context


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """The switcher's side: P2APST's certificate must chain to `ca_file` and carry the host
    name connected to (or the `server_hostname` given with it); ours is presented if set."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the peer and its name
    return _load(context, files)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """P2APST's side (the simulator): our certificate, and a client certificate chaining to
    `ca_file` required of every client."""
    if files.cert_file is None:
        raise TlsConfigError("a TLS server needs its certificate and key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    return _load(context, files)


__all__ = ["TlsConfigError", "TlsFiles", "client_context", "server_context"]
