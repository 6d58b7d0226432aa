"""The customer command language, in Bahasa Indonesia with English aliases.

    BELI <nominal> [meter] <PIN>   buy a token (nominal: 100000, 100.000, 100rb, 100k, 1jt)
    SALDO [meter]                  last known credit, and ask the meter
    STATUS [meter]                 the last purchase and the meter's state
    BANTUAN                        help
    STOP / MULAI                   withdraw / give consent to service notices
    ADUAN <teks>                   a complaint, answered with its ticket number

Words may be separated by spaces, '#', ',' or '*' (as customers type on feature phones).
`parse` takes any bytes or text and returns a command or raises CommandError with a reason
the reply can explain; it never raises anything else.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import StrEnum

MAX_LENGTH = 480  # three SMS parts: anything longer is not a command


class Problem(StrEnum):
    EMPTY = "empty"
    UNKNOWN = "unknown"
    MISSING_AMOUNT = "missing-amount"
    BAD_AMOUNT = "bad-amount"
    BAD_METER = "bad-meter"
    MISSING_PIN = "missing-pin"
    BAD_PIN = "bad-pin"
    TOO_MANY_WORDS = "too-many-words"
    TOO_LONG = "too-long"
    MISSING_TEXT = "missing-text"


class CommandError(ValueError):
    def __init__(self, problem: Problem, keyword: str | None = None, hint: str | None = None):
        self.problem = problem
        self.keyword = keyword  # the command the customer meant, when known
        self.hint = hint  # e.g. the keyword a typo was probably meant to be
        super().__init__(f"{problem}" + (f" ({keyword})" if keyword else ""))


@dataclass(frozen=True, slots=True)
class Buy:
    amount_rp: int
    meter: str | None
    pin: str

    def __repr__(self) -> str:  # the PIN never reaches a log line through repr()
        return f"Buy(amount_rp={self.amount_rp}, meter={self.meter!r}, pin='****')"


@dataclass(frozen=True, slots=True)
class Balance:
    meter: str | None


@dataclass(frozen=True, slots=True)
class Status:
    meter: str | None


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    pass


@dataclass(frozen=True, slots=True)
class Complain:
    text: str  # the customer's words after the keyword, as typed (PIN-like runs masked)


Command = Buy | Balance | Status | Help | Stop | Start | Complain

_KEYWORDS: dict[str, str] = {
    "BELI": "BELI", "BUY": "BELI", "ISI": "BELI", "TOKEN": "BELI",
    "SALDO": "SALDO", "CEK": "SALDO", "BALANCE": "SALDO", "SISA": "SALDO",
    "STATUS": "STATUS",
    "BANTUAN": "BANTUAN", "HELP": "BANTUAN", "INFO": "BANTUAN", "?": "BANTUAN", "MENU": "BANTUAN",
    "STOP": "STOP", "BERHENTI": "STOP", "UNREG": "STOP",
    "MULAI": "MULAI", "START": "MULAI", "REG": "MULAI",
    "ADUAN": "ADUAN", "KELUHAN": "ADUAN", "COMPLAINT": "ADUAN",
}  # fmt: skip
_SEPARATORS = re.compile(r"[\s#,*]+")
_METER = re.compile(r"[0-9]{11}")
_PIN = re.compile(r"[0-9]{4,6}")
_AMOUNT = re.compile(
    r"(?:RP\.?)?(?P<number>[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)(?P<unit>RB|RIBU|K|JT|JUTA)?"
)
_UNITS = {None: 1, "RB": 1000, "RIBU": 1000, "K": 1000, "JT": 1_000_000, "JUTA": 1_000_000}
_MAX_AMOUNT_RP = 100_000_000


def _words(raw: bytes | str) -> list[str]:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if len(text) > MAX_LENGTH:
        raise CommandError(Problem.TOO_LONG)
    return [word for word in _SEPARATORS.split(text.strip().upper()) if word]


def parse_amount(word: str) -> int:
    match = _AMOUNT.fullmatch(word)
    if match is None:
        raise CommandError(Problem.BAD_AMOUNT, "BELI")
    amount = int(match["number"].replace(".", "")) * _UNITS[match["unit"]]
    if not 0 < amount <= _MAX_AMOUNT_RP:
        raise CommandError(Problem.BAD_AMOUNT, "BELI")
    return amount


def _meter(words: list[str], keyword: str) -> str | None:
    if not words:
        return None
    if len(words) > 1:
        raise CommandError(Problem.TOO_MANY_WORDS, keyword)
    if not _METER.fullmatch(words[0]):
        raise CommandError(Problem.BAD_METER, keyword)
    return words[0]


def _buy(args: list[str]) -> Buy:
    if not args:
        raise CommandError(Problem.MISSING_AMOUNT, "BELI")
    amount = parse_amount(args[0])
    rest = args[1:]
    if not rest:
        raise CommandError(Problem.MISSING_PIN, "BELI")
    if len(rest) > 2:
        raise CommandError(Problem.TOO_MANY_WORDS, "BELI")
    pin = rest[-1]
    if _METER.fullmatch(pin) and len(rest) == 1:
        raise CommandError(Problem.MISSING_PIN, "BELI")
    if not _PIN.fullmatch(pin):
        raise CommandError(Problem.BAD_PIN, "BELI")
    meter = _meter(rest[:-1], "BELI")
    return Buy(amount_rp=amount, meter=meter, pin=pin)


def _complain(raw: bytes | str) -> Complain:
    # Free text: the customer's own words after the keyword, case and punctuation kept.
    # A complaint often quotes the failed purchase ("BELI 100rb 1234 tidak masuk"), so
    # PIN-like digit runs are masked before the text goes anywhere.
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    words = list(_WORD.finditer(text))
    rest = text[words[0].end() :].strip(" \t\r\n#,*") if words else ""
    if not rest:
        raise CommandError(Problem.MISSING_TEXT, "ADUAN")
    return Complain(_PIN_LIKE.sub(_stars, rest))


def parse(raw: bytes | str) -> Command:
    words = _words(raw)
    if not words:
        raise CommandError(Problem.EMPTY)
    head, args = words[0], words[1:]
    keyword = _KEYWORDS.get(head)
    if keyword is None:
        close = difflib.get_close_matches(head, list(_KEYWORDS), n=1, cutoff=0.75)
        raise CommandError(Problem.UNKNOWN, hint=_KEYWORDS[close[0]] if close else None)
    if keyword == "BELI":
        return _buy(args)
    if keyword == "SALDO":
        return Balance(_meter(args, keyword))
    if keyword == "STATUS":
        return Status(_meter(args, keyword))
    if keyword == "ADUAN":
        return _complain(raw)
    if args:
        raise CommandError(Problem.TOO_MANY_WORDS, keyword)
    if keyword == "BANTUAN":
        return Help()
    return Stop() if keyword == "STOP" else Start()


# A word as `_words` sees it (the separators' complement), found in the original text so
# that masking keeps the customer's spelling, case and separators.
_WORD = re.compile(r"[^\s#,*]+")
# A PIN-like digit run, wherever it sits in a word ("1234.", "PIN1234"): PINs are 4-6 digits
# and customers mistype them, so 4-8; a meter number (11 digits) or a phone number stays.
_PIN_LIKE = re.compile(r"(?<![0-9])[0-9]{4,8}(?![0-9])")


def _stars(match: re.Match[str]) -> str:
    return "*" * len(match[0])


def mask_secrets(text: str) -> str:
    """The text of a customer SMS as it may be stored and shown, its PIN masked.

    The parser decides: a purchase it accepts has its PIN word masked (its amount and meter
    stay readable); a command it refuses (a mistyped keyword, a wrong separator, a stray
    word: usually with the customer's real PIN in it) has every PIN-like digit run masked.
    Other commands carry no PIN and are kept as they are."""
    try:
        command = parse(text)
    except CommandError:
        return _PIN_LIKE.sub(_stars, text)
    if isinstance(command, Complain):
        return _PIN_LIKE.sub(_stars, text)
    if not isinstance(command, Buy):
        return text
    words = list(_WORD.finditer(text))
    last = words[-1] if words else None
    if last is None or last[0] != command.pin:  # not the parser's own last word: be safe
        return _PIN_LIKE.sub(_stars, text)
    return f"{text[: last.start()]}{'*' * len(last[0])}{text[last.end() :]}"
