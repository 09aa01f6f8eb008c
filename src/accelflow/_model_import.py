"""Import names for a user's model files, resolvable in every process that has imported accelflow.

A model file (``net.py``) is imported as a module named after its absolute path (:func:`module_name_for`).
Classes it defines then pickle under that name, and the finder installed here, when :mod:`accelflow` is
imported, maps the name back to the file in any process that unpickles them: spawned ``--workers``, Dask
workers, a resumed run loading its saved states. It lives here, without torch, so that importing
accelflow is enough and stays cheap.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["module_name_for"]

#: Prefix of the module names model files are imported under; the rest is the file's absolute path, hex-encoded.
_PREFIX = "accelflow_model_file_"


def module_name_for(path: str | Path) -> str:
    """The module name a model file is imported under: unique per absolute path."""
    return _PREFIX + str(Path(path).resolve()).encode().hex()


class _ModelFileFinder(importlib.abc.MetaPathFinder):
    """Finds modules named by :func:`module_name_for`; everything else is left to the other finders."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        try:
            file = bytes.fromhex(fullname[len(_PREFIX):]).decode()
        except ValueError:
            return None
        return importlib.util.spec_from_file_location(fullname, file) if Path(file).is_file() else None


if not any(isinstance(f, _ModelFileFinder) for f in sys.meta_path):
    sys.meta_path.append(_ModelFileFinder())
