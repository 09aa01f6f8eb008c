"""Errors of the HASS package."""

from accelflow.errors import AccelflowError

__all__ = ["HassError"]


class HassError(AccelflowError):
    """A sparsity-search request cannot be served (bad bound, unknown objective, empty data, bad study)."""
