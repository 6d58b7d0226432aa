"""How `pintar` sub-commands speak: JSON on stdout; on bad input a clear message, exit 2."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer

EXIT_BAD_INPUT = 2


def emit(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def fail(message: str) -> NoReturn:
    """Report bad input on stderr and leave with exit status 2."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code=EXIT_BAD_INPUT)
