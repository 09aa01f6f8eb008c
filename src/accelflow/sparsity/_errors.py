"""Errors of the sparsity package."""

from accelflow.errors import AccelflowError

__all__ = ["SparsityError"]


class SparsityError(AccelflowError):
    """A sparsity measurement or export request does not fit the model (unknown layer, bad histogram)."""
