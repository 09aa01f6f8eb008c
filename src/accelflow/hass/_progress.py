"""The progress bar of long HASS steps (search trials, fine-tunings)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn

__all__ = ["progress_bar"]


def progress_bar(enabled: bool, *columns: ProgressColumn) -> Progress:
    """``hass <description> [bar] done/total`` then ``columns``, on stderr, cleared when done; shown only
    when ``enabled`` and stderr is a terminal."""
    console = Console(stderr=True)
    return Progress(TextColumn("[bold]hass[/] {task.description}"), BarColumn(), MofNCompleteColumn(), *columns,
                    console=console, transient=True, disable=not (enabled and console.is_terminal))
