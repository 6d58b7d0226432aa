"""Docs that match the code: the README's command table names every command of the Typer
app (and every option of the commands it spells out), every `docs/...` path cited anywhere
in the repository exists, and the store's tables are all described in docs/store.md."""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer

from operator_data.cli.main import app
from operator_data.settings import ServiceSettings
from operator_data.store import schema

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEPLOY = ROOT / "deploy"

# Options every data command has (said once under the table) or that every command has.
COMMON_OPTIONS = frozenset({"--config", "--data-dir", "--help"})
# Text files that may cite docs; generated or vendored trees are not ours to check.
TEXT_SUFFIXES = frozenset({".md", ".py", ".toml", ".yml", ".yaml", ".txt", ".html", ".sh", ".j2"})
SKIP_DIRS = frozenset({".git", ".venv", "node_modules", "__pycache__", ".mypy_cache"})
# A file or folder under docs/, or a shell-style pair such as benchmarks.{md,json}.
CITATION = re.compile(r"(?<![\w/.-])(docs/[A-Za-z0-9_./-]*[A-Za-z0-9_])(?:\.\{([a-z0-9,]+)\})?")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_COMMAND_WORD = re.compile(r"^[a-z0-9][a-z0-9-]*(\|[a-z0-9][a-z0-9-]*)*$")
_OPTION = re.compile(r"--[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("pintar", "users", "add")
    options: tuple[frozenset[str], ...]  # per option, its names (--date, --day)

    def option_names(self) -> frozenset[str]:
        return frozenset().union(*self.options)


def typer_commands() -> list[Command]:
    """Every runnable command of `pintar`, sub-apps walked down to their leaves."""
    root = typer.main.get_command(app)
    found: list[Command] = []

    def walk(command: click.Command, path: tuple[str, ...], ctx: click.Context) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{' '.join(path)} lists {name} but cannot load it"
                walk(sub, (*path, name), click.Context(sub, parent=ctx, info_name=name))
            return
        # A flag's --no-x form (secondary_opts) needs no mention of its own.
        options = tuple(
            frozenset(opt for opt in param.opts if opt.startswith("--"))
            for param in command.params
            if isinstance(param, click.Option)
        )
        found.append(Command(path, tuple(names for names in options if names)))

    walk(root, ("pintar",), click.Context(root, info_name="pintar"))
    return found


@dataclass(frozen=True)
class Row:
    """One `pintar ...` code span of the README's command table."""

    words: tuple[frozenset[str], ...]  # each position's alternatives: a|b|c
    text: str
    elided: bool  # ends in "...": its options are left to --help

    def names(self, command: Command) -> bool:
        return len(self.words) == len(command.path) and all(
            word in choices for word, choices in zip(command.path, self.words, strict=True)
        )


def command_table(readme: str) -> list[Row]:
    lines = readme.splitlines()
    start = lines.index("| command | what it does |")
    rows: list[Row] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        first_cell = re.split(r"(?<!\\)\|", line)[1]
        for span in _CODE_SPAN.findall(first_cell):
            text = span.replace("\\|", "|")
            tokens = text.split()
            if not tokens or tokens[0] != "pintar":
                continue
            words: list[frozenset[str]] = []
            for token in tokens:
                if not _COMMAND_WORD.match(token):
                    break
                words.append(frozenset(token.split("|")))
            rows.append(Row(tuple(words), text, text.rstrip().endswith("...")))
    return rows


def test_the_walk_finds_the_commands_the_issue_names() -> None:
    paths = {" ".join(c.path) for c in typer_commands()}
    assert {"pintar hub", "pintar ap2t overdue", "pintar users add", "pintar sts encode"} <= paths
    hub = next(c for c in typer_commands() if c.path == ("pintar", "hub"))
    assert "--check" in hub.option_names()


def test_the_readme_command_table_names_every_command() -> None:
    rows = command_table(README.read_text(encoding="utf-8"))
    assert rows, "no command table in README.md"
    missing = [" ".join(c.path) for c in typer_commands() if not any(row.names(c) for row in rows)]
    assert missing == [], "commands missing from README.md's command table"


def test_the_readme_names_no_command_that_does_not_exist() -> None:
    paths = {c.path for c in typer_commands()}
    for row in command_table(README.read_text(encoding="utf-8")):
        for path in itertools.product(*(sorted(choices) for choices in row.words)):
            assert path in paths, (
                f"README.md's `{row.text}` names {' '.join(path)!r}: no such command"
            )


def test_rows_that_spell_out_options_spell_out_all_of_them() -> None:
    # A row for one command, not ending in "...", lists its options (so `--check` and
    # friends are seen); `--config` and `--data-dir` are said once under the table.
    commands = typer_commands()
    for row in command_table(README.read_text(encoding="utf-8")):
        if row.elided or any(len(choices) > 1 for choices in row.words):
            continue
        (command,) = [c for c in commands if row.names(c)]
        written = set(_OPTION.findall(row.text))
        unnamed = [
            sorted(names) for names in command.options if not names & (written | COMMON_OPTIONS)
        ]
        assert unnamed == [], row.text
        assert written - command.option_names() == set(), f"`{row.text}` names options it lacks"


def _text_files() -> list[Path]:
    files: list[Path] = []
    for directory, subdirs, names in os.walk(ROOT):
        # Pruned in place, so os.walk never enters the virtualenv or .git.
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        here = Path(directory)
        for name in names:
            path = here / name
            if path.suffix in TEXT_SUFFIXES or here.name == "scripts":
                files.append(path)
    return files


def citations(text: str) -> set[str]:
    found: set[str] = set()
    for path, suffixes in CITATION.findall(text):
        if suffixes:
            found.update(f"{path}.{suffix}" for suffix in suffixes.split(","))
        else:
            found.add(path)
    return found


def test_the_citation_scan_reads_what_a_citation_looks_like() -> None:
    text = "see docs/store.md. Or `docs/bus.md`, (docs/screenshots/), not mydocs/x.md"
    assert citations(text) == {"docs/store.md", "docs/bus.md", "docs/screenshots"}
    assert citations("rewrites docs/benchmarks.{md,json}.") == {
        "docs/benchmarks.md",
        "docs/benchmarks.json",
    }


def test_every_cited_docs_file_exists() -> None:
    cited: dict[str, list[str]] = {}
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for citation in citations(text):
            cited.setdefault(citation, []).append(str(path.relative_to(ROOT)))
    assert "docs/store.md" in cited  # the scan sees the citations the issue names
    missing = {c: sorted(where) for c, where in cited.items() if not (ROOT / c).exists()}
    assert missing == {}, "cited but missing"


@pytest.mark.parametrize("table", sorted(schema.metadata.tables))
def test_docs_store_describes_every_table(table: str) -> None:
    # Imports that attach tables to the metadata (workflow, reporting, web app).
    assert f"`{table}`" in (ROOT / "docs" / "store.md").read_text(encoding="utf-8")


def test_the_docs_give_one_short_code_the_settings_default() -> None:
    # "short code 87000", "short_code = ...": each must be the one the hub uses by default;
    # the form 8ABCD itself is the regulation's pattern, not a code.
    default = ServiceSettings().short_code
    said = re.compile(r"short[ _]code\W{0,4}(8[0-9A-Z]{4})\b", re.IGNORECASE)
    found: dict[str, set[str]] = {}
    for path in [README, *sorted((ROOT / "docs").glob("*.md")), *sorted(DEPLOY.glob("*.toml"))]:
        for code in said.findall(path.read_text(encoding="utf-8")):
            found.setdefault(code, set()).add(str(path.relative_to(ROOT)))
    assert found, "no document names the short code"
    assert set(found) == {default}, found
