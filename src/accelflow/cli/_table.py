"""Tables for the terminal and for pipes: names wrap, numbers never do.

Rich shrinks columns to fit the console and cuts what does not fit (``118,013,9…``); a table of numbers
must not lose digits when it is piped (80 columns) or read in a narrow terminal. :func:`print_table` gives
every number column the width of its widest cell and lets only the text columns (layer names) fold, and
widens the console past the terminal when even that does not fit, so a line may wrap but no value is cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Column", "print_table"]

#: Narrowest a text column gets before the console is widened instead (a layer name folds at this width).
_MIN_TEXT = 14


@dataclass(frozen=True)
class Column:
    """A table column: ``number`` columns are right-aligned and never wrap."""

    header: str
    number: bool = False


def print_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]],
                footer: Sequence[Sequence[str]] = ()) -> None:
    """Print ``rows`` (then ``footer`` rows after a rule) under ``title`` to standard output."""
    from rich.console import Console
    from rich.table import Table

    cells = [*rows, *footer]
    widths = [max([len(c.header), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    table = Table(title=title)
    for column, width in zip(columns, widths, strict=True):
        if column.number:
            table.add_column(column.header, justify="right", no_wrap=True, min_width=width)
        else:
            table.add_column(column.header, justify="left", overflow="fold", min_width=min(width, _MIN_TEXT))
    for row in rows:
        table.add_row(*row)
    if footer:
        table.add_section()
        for row in footer:
            table.add_row(*row)
    console = Console()
    needed = sum(w if c.number else min(w, _MIN_TEXT) for c, w in zip(columns, widths, strict=True)) \
        + 3 * len(columns) + 1  # cell padding and borders
    if needed > console.width:
        console = Console(width=needed)
    console.print(table)
