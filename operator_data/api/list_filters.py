"""The message-log page's filters checked before any search: a value that is not valid
is refused with a text saying which filter, and the page shows no rows, never the
unfiltered log (issue 17 item 11). The API refuses the same values by its own types."""

from __future__ import annotations

import re

from operator_data.api import helpdesk_texts, i18n
from operator_data.store.states import Direction, Flow, MessageState


class BadFilter(ValueError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def bad_message_filters(
    *, meter_number: str, customer_id: str, state: str, flow: str, direction: str
) -> list[str]:
    """The names of the given (non-empty) filters whose value cannot be used."""
    valid: dict[str, tuple[str, bool]] = {
        "meter_number": (meter_number, re.fullmatch(r"[0-9]{11}", meter_number) is not None),
        "customer_id": (customer_id, re.fullmatch(r"[0-9]{12}", customer_id) is not None),
        "state": (state, state in {s.value for s in MessageState}),
        "flow": (flow, flow in {f.value for f in Flow}),
        "direction": (direction, direction in {d.value for d in Direction}),
    }
    return [name for name, (value, ok) in valid.items() if value and not ok]


def refusal_text(names: list[str], language: str) -> str:
    """'Invalid filter: meter number, state. Nothing is shown.' in the page's language."""
    lang = i18n.pick_language(language)
    t = helpdesk_texts.texts(lang)
    shown = [t.get(f"filter_{name}", name) for name in names]
    return t["bad_filter_values"].format(names=", ".join(shown))
