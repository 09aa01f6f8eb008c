"""The progress bar of long HASS steps (search trials, fine-tunings) and a spinner for the baselines."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn

__all__ = ["progress_bar", "status"]


def progress_bar(enabled: bool, *columns: ProgressColumn) -> Progress:
    """``hass <description> [bar] done/total`` then ``columns``, on stderr, cleared when done; shown only
    when ``enabled`` and stderr is a terminal."""
    console = Console(stderr=True)
    return Progress(TextColumn("[bold]hass[/] {task.description}"), BarColumn(), MofNCompleteColumn(), *columns,
                    console=console, transient=True, disable=not (enabled and console.is_terminal))


def status(enabled: bool, what: str) -> AbstractContextManager[object]:
    """A ``hass <what>...`` spinner on stderr while the block runs (shown only when ``enabled`` and stderr
    is a terminal): for steps whose length is not known up front."""
    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        return nullcontext()
    return console.status(f"[bold]hass[/] {what}...")
