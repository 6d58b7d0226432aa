"""`pintar --help`, drawn with plain `rich` in the look of Typer's help.

Typer's own rich help imports Markdown, syntax highlighting and traceback support (about
0.1 s of CPU) to print a list of names: the root help is the command people run most, so
it is drawn here from the lazy command table instead. Sub-commands keep Typer's help.
"""

from __future__ import annotations

from collections.abc import Sequence

Row = tuple[str, str]  # name, one-line help


def render(
    usage: str, description: str, options: Sequence[Row], panels: dict[str, list[Row]]
) -> None:
    """Print the help on stdout: usage, description, then one framed panel per group."""
    from rich import box
    from rich.console import Console, Group, RenderableType
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    width = max(len(name) for _, rows in [("", options), *panels.items()] for name, _ in rows)

    def panel(title: str, rows: Sequence[Row], style: str) -> Panel:
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        table.add_column(style=style, no_wrap=True, min_width=width)
        table.add_column(ratio=1)
        for name, text in rows:
            table.add_row(name, text)
        return Panel(
            table,
            title=title,
            title_align="left",
            border_style="dim",
            box=box.ROUNDED,
        )

    head = Text(" Usage: ", style="yellow") + Text(usage, style="bold")
    parts: list[RenderableType] = [
        Padding(head, (1, 0, 0, 0)),
        Padding(Text(description), (1, 1, 1, 1)),
        panel("Options", options, "bold cyan"),
        *(panel(title, rows, "bold cyan") for title, rows in panels.items()),
    ]
    console.print(Group(*parts))
