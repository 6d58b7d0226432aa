"""Every text the hub sends a customer, in Bahasa Indonesia (default) and English.

Each reply is a service notice: one SMS (at most 160 GSM-7 characters with every value at
its longest, which the tests check), says what to do next, and carries no marketing
(Permenkominfo 5/2021 art. 182). Templates are data; `render` refuses a result that is not
one GSM-7 SMS rather than sending a two-part message the customer pays twice for.
"""

from __future__ import annotations

from enum import StrEnum
from string import Formatter

from operator_data.commands.grammar import CommandError, Problem

SMS_LIMIT = 160

# GSM 03.38 default alphabet and its extension table (extension characters count double).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = set("^{}\\[~]|€\f")


def gsm7_length(text: str) -> int | None:
    """Septets `text` needs in GSM-7, or None if it has a character outside the alphabet."""
    length = 0
    for char in text:
        if char in _GSM7_BASIC:
            length += 1
        elif char in _GSM7_EXTENSION:
            length += 2
        else:
            return None
    return length


class Lang(StrEnum):
    ID = "id"
    EN = "en"


class Reply(StrEnum):
    HELP = "help"
    UNKNOWN = "unknown"
    UNKNOWN_HINT = "unknown-hint"
    BUY_USAGE = "buy-usage"
    BAD_AMOUNT = "bad-amount"
    BAD_METER = "bad-meter"
    BAD_PIN_FORMAT = "bad-pin-format"
    TOO_LONG = "too-long"
    NOT_REGISTERED = "not-registered"
    WHICH_METER = "which-meter"
    NOT_YOUR_METER = "not-your-meter"
    WRONG_PIN = "wrong-pin"
    PIN_LOCKED = "pin-locked"
    DENOMINATION = "denomination"
    PURCHASE_ACCEPTED = "purchase-accepted"
    PURCHASE_DUPLICATE = "purchase-duplicate"
    PURCHASE_FAILED = "purchase-failed"
    RECEIPT = "receipt"
    TOKEN_REJECTED = "token-rejected"
    BALANCE = "balance"
    BALANCE_UNKNOWN = "balance-unknown"
    STATUS = "status"
    LOW_CREDIT = "low-credit"
    STOPPED = "stopped"
    STARTED = "started"
    COMPLAINT_OPENED = "complaint-opened"
    COMPLAINT_USAGE = "complaint-usage"


_TEXTS: dict[Reply, dict[Lang, str]] = {
    Reply.HELP: {
        Lang.ID: "Listrik Pintar: BELI <nominal> <PIN> beli token; SALDO cek sisa kWh; "
        "STATUS transaksi terakhir; STOP berhenti info. Contoh: BELI 100rb 1234",
        Lang.EN: "Listrik Pintar: BELI <amount> <PIN> buys a token; SALDO shows kWh left; "
        "STATUS last purchase; STOP ends notices. Example: BELI 100rb 1234",
    },
    Reply.UNKNOWN: {
        Lang.ID: "Perintah tidak dikenal. Ketik BANTUAN untuk daftar perintah, "
        "atau BELI <nominal> <PIN> untuk beli token.",
        Lang.EN: "Unknown command. Send BANTUAN for the list of commands, "
        "or BELI <amount> <PIN> to buy a token.",
    },
    Reply.UNKNOWN_HINT: {
        Lang.ID: "Perintah tidak dikenal. Maksud Anda {hint}? Ketik BANTUAN untuk daftar perintah.",
        Lang.EN: "Unknown command. Did you mean {hint}? Send BANTUAN for the list of commands.",
    },
    Reply.BUY_USAGE: {
        Lang.ID: "Format salah. Ketik BELI <nominal> [no meter] <PIN>, contoh: BELI 100rb 1234",
        Lang.EN: "Wrong format. Send BELI <amount> [meter no] <PIN>, e.g. BELI 100rb 1234",
    },
    Reply.BAD_AMOUNT: {
        Lang.ID: "Nominal tidak valid. Pilihan: {denominations}. Contoh: BELI 100rb 1234",
        Lang.EN: "Invalid amount. Choose: {denominations}. Example: BELI 100rb 1234",
    },
    Reply.DENOMINATION: {
        Lang.ID: "Nominal Rp{amount} tidak tersedia. Pilihan: {denominations}.",
        Lang.EN: "Amount Rp{amount} is not offered. Choose: {denominations}.",
    },
    Reply.BAD_METER: {
        Lang.ID: "Nomor meter harus 11 angka. Cek nomor pada meter Anda lalu kirim ulang.",
        Lang.EN: "A meter number has 11 digits. Check the number on your meter and send again.",
    },
    Reply.BAD_PIN_FORMAT: {
        Lang.ID: "PIN harus 4-6 angka. Contoh: BELI 100rb 1234",
        Lang.EN: "The PIN has 4-6 digits. Example: BELI 100rb 1234",
    },
    Reply.TOO_LONG: {
        Lang.ID: "Pesan terlalu panjang. Ketik BANTUAN untuk daftar perintah.",
        Lang.EN: "Message too long. Send BANTUAN for the list of commands.",
    },
    Reply.NOT_REGISTERED: {
        Lang.ID: "Nomor HP ini belum terdaftar untuk Listrik Pintar. "
        "Hubungi helpdesk atau kantor PLN terdekat untuk mendaftar.",
        Lang.EN: "This phone is not registered for Listrik Pintar. "
        "Contact the helpdesk or your PLN office to register.",
    },
    Reply.WHICH_METER: {
        Lang.ID: "Anda punya beberapa meter. Sebutkan nomor meter, contoh: {example}",
        Lang.EN: "You have several meters. Name the meter number, e.g. {example}",
    },
    Reply.NOT_YOUR_METER: {
        Lang.ID: "Meter {meter} tidak terdaftar pada nomor HP ini. Cek nomor meter Anda.",
        Lang.EN: "Meter {meter} is not registered to this phone. Check your meter number.",
    },
    Reply.WRONG_PIN: {
        Lang.ID: "PIN salah. Sisa percobaan: {attempts_left}. Setelah itu PIN diblokir sementara.",
        Lang.EN: "Wrong PIN. Attempts left: {attempts_left}. After that the PIN is locked.",
    },
    Reply.PIN_LOCKED: {
        Lang.ID: "PIN diblokir sampai {until} WIB karena salah berulang kali. "
        "Hubungi helpdesk untuk membuka blokir.",
        Lang.EN: "PIN locked until {until} WIB after repeated wrong tries. "
        "Contact the helpdesk to unlock it.",
    },
    Reply.PURCHASE_ACCEPTED: {
        Lang.ID: "Pembelian Rp{amount} utk meter {meter} diproses (ref {ref}). "
        "Token dikirim langsung ke meter, tunggu SMS bukti.",
        Lang.EN: "Purchase of Rp{amount} for meter {meter} is in progress (ref {ref}). "
        "The token goes to the meter; a receipt follows.",
    },
    Reply.PURCHASE_DUPLICATE: {
        Lang.ID: "Pembelian ini sudah diterima (ref {ref}), tidak dibayar dua kali. "
        "Tunggu SMS bukti.",
        Lang.EN: "This purchase was already received (ref {ref}) and is not charged twice. "
        "Wait for the receipt.",
    },
    Reply.PURCHASE_FAILED: {
        Lang.ID: "Pembelian Rp{amount} gagal: {reason}. Anda tidak ditagih.",
        Lang.EN: "Purchase of Rp{amount} failed: {reason}. You were not charged.",
    },
    Reply.RECEIPT: {
        Lang.ID: "Token Rp{amount} masuk ke meter {meter}: +{kwh} kWh, sisa {credit} kWh. "
        "Ref {ref}. Token {token}",
        Lang.EN: "Token Rp{amount} applied to meter {meter}: +{kwh} kWh, {credit} kWh left. "
        "Ref {ref}. Token {token}",
    },
    Reply.TOKEN_REJECTED: {
        Lang.ID: "Token utk meter {meter} ditolak meter ({reason}), ref {ref}. "
        "Helpdesk kami sedang menangani, tidak perlu beli ulang.",
        Lang.EN: "Meter {meter} refused the token ({reason}), ref {ref}. "
        "Our helpdesk is on it; do not buy again.",
    },
    Reply.BALANCE: {
        Lang.ID: "Sisa kWh meter {meter}: {credit} kWh (per {at} WIB). "
        "Data terbaru dari meter menyusul.",
        Lang.EN: "Meter {meter} has {credit} kWh left (as of {at} WIB). A fresh reading follows.",
    },
    Reply.BALANCE_UNKNOWN: {
        Lang.ID: "Belum ada data sisa kWh meter {meter}. Kami minta data ke meter, "
        "jawaban menyusul.",
        Lang.EN: "No credit reading yet for meter {meter}. We asked the meter; the answer follows.",
    },
    Reply.STATUS: {
        Lang.ID: "Meter {meter}: {state}. Transaksi terakhir Rp{amount} ({tx_state}) "
        "{at} WIB, ref {ref}.",
        Lang.EN: "Meter {meter}: {state}. Last purchase Rp{amount} ({tx_state}) "
        "{at} WIB, ref {ref}.",
    },
    Reply.LOW_CREDIT: {
        Lang.ID: "Info: sisa kWh meter {meter} tinggal {credit} kWh. "
        "Beli token: BELI <nominal> <PIN>. Ketik STOP utk berhenti info.",
        Lang.EN: "Notice: meter {meter} has {credit} kWh left. "
        "Buy: BELI <amount> <PIN>. Send STOP to end notices.",
    },
    Reply.STOPPED: {
        Lang.ID: "Anda tidak akan menerima info lagi. Bukti pembelian tetap dikirim. "
        "Ketik MULAI untuk mengaktifkan kembali.",
        Lang.EN: "You will get no more notices. Purchase receipts still come. "
        "Send MULAI to turn notices back on.",
    },
    Reply.STARTED: {
        Lang.ID: "Info Listrik Pintar aktif kembali. Ketik STOP untuk berhenti.",
        Lang.EN: "Listrik Pintar notices are on again. Send STOP to end them.",
    },
    Reply.COMPLAINT_OPENED: {
        Lang.ID: "Aduan Anda diterima, no tiket {ticket}. Kami selesaikan paling lambat "
        "{due} (15 hari kerja). Sebutkan no tiket bila menghubungi helpdesk.",
        Lang.EN: "Complaint received, ticket {ticket}. We resolve it by {due} "
        "(15 working days). Quote the ticket when you call the helpdesk.",
    },
    Reply.COMPLAINT_USAGE: {
        Lang.ID: "Tulis aduan setelah kata ADUAN, contoh: ADUAN token tidak masuk ke meter",
        Lang.EN: "Write the complaint after ADUAN, e.g. ADUAN token did not reach my meter",
    },
}

#: Values at their longest, for checking that every reply fits one SMS.
LONGEST_VALUES: dict[str, str] = {
    "hint": "BANTUAN",
    "denominations": "20rb 50rb 100rb 200rb 500rb 1jt",
    "amount": "10.000.000",
    "meter": "14123456789",
    "example": "SALDO 14123456789",
    "attempts_left": "9",
    "until": "31-12 23:59",
    "ref": "A1B2C3D4E5F6",
    "reason": "total kWh melebihi batas",
    "kwh": "99999.9",
    "credit": "99999.9",
    "token": "1234-5678-9012-3456-7890",
    "at": "31-12 23:59",
    "state": "AKTIF",
    "tx_state": "diproses",
    "ticket": "ADU-ABCDEFGHJK",
    "due": "31-12-2026",
}


class ReplyError(ValueError):
    """A rendered reply would not fit one GSM-7 SMS."""


def fields_of(reply: Reply, lang: Lang) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(_TEXTS[reply][lang]) if name}


def render(reply: Reply, lang: Lang = Lang.ID, **values: object) -> str:
    text = _TEXTS[reply][lang].format(**{k: str(v) for k, v in values.items()})
    length = gsm7_length(text)
    if length is None or length > SMS_LIMIT:
        raise ReplyError(f"reply {reply} in {lang} does not fit one GSM-7 SMS: {text!r}")
    return text


_PROBLEM_REPLIES = {
    Problem.EMPTY: Reply.HELP,
    Problem.UNKNOWN: Reply.UNKNOWN,
    Problem.MISSING_AMOUNT: Reply.BUY_USAGE,
    Problem.BAD_AMOUNT: Reply.BAD_AMOUNT,
    Problem.BAD_METER: Reply.BAD_METER,
    Problem.MISSING_PIN: Reply.BUY_USAGE,
    Problem.BAD_PIN: Reply.BAD_PIN_FORMAT,
    Problem.TOO_MANY_WORDS: Reply.HELP,
    Problem.TOO_LONG: Reply.TOO_LONG,
    Problem.MISSING_TEXT: Reply.COMPLAINT_USAGE,
}


def reply_for_error(error: CommandError, lang: Lang, denominations: str) -> str:
    """What to answer a command that did not parse: never silence."""
    if error.problem is Problem.UNKNOWN and error.hint:
        return render(Reply.UNKNOWN_HINT, lang, hint=error.hint)
    if error.problem is Problem.TOO_MANY_WORDS and error.keyword == "BELI":
        return render(Reply.BUY_USAGE, lang)
    reply = _PROBLEM_REPLIES[error.problem]
    return render(reply, lang, denominations=denominations)
