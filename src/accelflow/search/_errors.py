"""Errors of the search layer."""

from __future__ import annotations

from accelflow.errors import ConfigError

__all__ = ["SearchError"]


class SearchError(ConfigError):
    """A study, storage URL, search space or executor option is invalid (reported as one line, exit 2)."""
