"""Customer SMS commands at the short code: parsing, and the replies' texts."""

from operator_data.commands.grammar import (
    Balance,
    Buy,
    Command,
    CommandError,
    Complain,
    Help,
    Problem,
    Start,
    Status,
    Stop,
    mask_secrets,
    parse,
)

__all__ = [
    "Balance",
    "Buy",
    "Command",
    "CommandError",
    "Complain",
    "Help",
    "Problem",
    "Start",
    "Status",
    "Stop",
    "mask_secrets",
    "parse",
]
