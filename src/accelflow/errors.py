"""Exception classes shared by every accelflow package.

Every error a user can cause by bad input derives from :class:`AccelflowError`; the CLI turns it into a
one-line message and exit code 2. Messages name the file, node or field and say what is allowed.
"""

from __future__ import annotations

__all__ = [
    "AccelflowError",
    "UnsupportedOperatorError",
    "ModelImportError",
    "GraphError",
    "ConfigError",
    "DataError",
]


class AccelflowError(Exception):
    """Base class of errors caused by user input or environment (reported without a traceback)."""


class GraphError(AccelflowError):
    """An IR invariant is violated (dangling user, cycle, erased node still in use, bad shape)."""


class ModelImportError(AccelflowError):
    """A model file or module cannot be read into the IR."""


class UnsupportedOperatorError(ModelImportError):
    """An operator the IR does not cover; the message names the node and lists supported operators."""


class ConfigError(AccelflowError):
    """A YAML/Python configuration (architecture, flow, device, CLI option) is invalid."""


class DataError(AccelflowError):
    """A data set is missing or malformed."""
