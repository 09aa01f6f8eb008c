"""The `accelflow` command line."""

from accelflow.cli.main import main

__all__ = ["main"]
