"""Trained-weight cache: train a zoo model once per (model, data, recipe) and reload it afterwards.

Entries live in :func:`weights_cache_dir` as ``<key>.pt`` (a state dict) and ``<key>.json`` (recipe,
accuracies, timings, torch version and the sha256 of the ``.pt``). Both are written to a temporary file and
renamed into place, the ``.json`` last, so an interrupted run never leaves an entry that looks complete; an
entry that cannot be read or does not match its checksum is retrained with a logged warning. Two processes
training the same entry at once both train; the later rename wins (at worst one later retrain).
:func:`cache_entries` lists the entries of such a directory and :func:`remove_entries` deletes them
(``accelflow cache``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from accelflow.data import DatasetInfo, Splits, load
from accelflow.train._loop import TrainResult, train
from accelflow.train._recipe import TrainRecipe

__all__ = [
    "CACHE_ENV",
    "CACHE_VERSION",
    "CacheEntry",
    "CacheInfo",
    "DEFAULT_RECIPES",
    "FALLBACK_RECIPE",
    "cache_key",
    "cache_entries",
    "cached_model",
    "cached_training",
    "load_weights",
    "save_weights",
    "weights_digest",
    "arrays_digest",
    "default_recipe",
    "remove_entries",
    "weights_cache_dir",
]

log = logging.getLogger(__name__)

#: Environment variable naming the cache root (default ``~/.cache/accelflow``).
CACHE_ENV = "ACCELFLOW_CACHE"
#: Bump when the training loop changes in a way that makes old weights stale.
CACHE_VERSION = 1

#: Default recipes per zoo model, chosen to reach the accuracy targets (tests/train/test_accuracy_targets.py)
#: on CPU. Measured on Fashion-MNIST on a shared, heavily loaded 2-core machine: lenet5 90.25% test in
#: 212 s; resnet8 91.13% in 5 epochs (953 s at 1 thread under load 7-11; 90.78% after 4 epochs).
#: digits_mlp 98.9% test; jet_dnn 75.2% on the SYNTHETIC jets. vit_nano (7x7 patches): 87.18% test, 87.53% val
#: in 5 epochs (489-595 s at 1 thread under load 7-10, 60-150 s per epoch).
DEFAULT_RECIPES: dict[str, TrainRecipe] = {
    "lenet5": TrainRecipe(epochs=8, batch_size=128, lr=2e-3, optimizer="adam", scheduler="cosine"),
    "resnet8": TrainRecipe(epochs=5, batch_size=128, lr=2e-3, optimizer="adam", weight_decay=0.0,
                           scheduler="cosine"),
    "vit_nano": TrainRecipe(epochs=5, batch_size=128, lr=2e-3, optimizer="adamw", weight_decay=0.05,
                            scheduler="cosine"),
    "digits_mlp": TrainRecipe(epochs=30, batch_size=64, lr=3e-3, optimizer="adam", scheduler="cosine"),
    "jet_dnn": TrainRecipe(epochs=15, batch_size=256, lr=3e-3, optimizer="adam", scheduler="cosine"),
}
#: Recipe for zoo models without an entry in :data:`DEFAULT_RECIPES`.
FALLBACK_RECIPE = TrainRecipe(epochs=5, batch_size=128, lr=1e-3, optimizer="adam", scheduler="cosine")


@dataclass(frozen=True)
class CacheInfo:
    """Where a cached model lives, whether it was found (``hit``) and its accuracies in [0, 1]."""

    key: str
    path: Path
    hit: bool
    val_accuracy: float
    test_accuracy: float


def weights_cache_dir() -> Path:
    """Directory of cached weights: ``$ACCELFLOW_CACHE/weights`` or ``~/.cache/accelflow/weights``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "accelflow"
    return base / "weights"


def default_recipe(zoo_name: str) -> TrainRecipe:
    """The recipe :func:`cached_model` uses for ``zoo_name`` when none is given."""
    return DEFAULT_RECIPES.get(zoo_name, FALLBACK_RECIPE)


def cache_key(zoo_name: str, model_kwargs: Mapping[str, Any], fingerprint: str, recipe: TrainRecipe) -> str:
    """Hex sha256 of the JSON of everything that determines the trained weights."""
    payload = {
        "zoo": zoo_name,
        "model_kwargs": dict(model_kwargs),
        "data": fingerprint,
        "recipe": recipe.to_dict(),
        "cache_version": CACHE_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def arrays_digest(*arrays: np.ndarray) -> str:
    """Hex sha256 of ``arrays`` (dtype, shape and bytes of each, in order): what keys results computed from
    data, such as fine-tunings on a training split or a study's evaluations on validation images."""
    h = hashlib.sha256()
    for array in arrays:
        h.update(repr((array.dtype.str, array.shape)).encode())
        h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


def weights_digest(model: nn.Module) -> str:
    """Hex sha256 of ``model``'s state dict (names and bytes, in name order) and its printed architecture:
    what keys caches of results computed from a model's weights (hls4ml conversions, fine-tunings)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    h.update(str(model).encode())
    return h.hexdigest()


def load_weights(model: nn.Module, stem: Path) -> dict[str, Any] | None:
    """Load the entry ``<stem>.pt`` / ``<stem>.json`` written by :func:`save_weights` into ``model`` and
    return its metadata; None when absent, a warning and None when unusable (checksum mismatch,
    truncated file, other architecture): such an entry is rebuilt by the caller, never trusted."""
    weights, meta_path = stem.with_suffix(".pt"), stem.with_suffix(".json")
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        blob = weights.read_bytes()
        if hashlib.sha256(blob).hexdigest() != meta["weights_sha256"]:
            raise ValueError("checksum mismatch (truncated or overwritten)")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return meta
    except Exception as exc:  # any unreadable entry is rebuilt, never trusted
        log.warning("cached weights %s are unusable (%s); rebuilding them", weights, exc)
        return None


def save_weights(model: nn.Module, stem: Path, meta: Mapping[str, Any]) -> None:
    """Write ``model``'s state dict to ``<stem>.pt`` and ``meta`` (plus the weights' sha256) to
    ``<stem>.json``, each atomically; the entry counts as present only once the ``.json`` has landed, so an
    interrupted write leaves no entry that :func:`load_weights` would trust."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    blob = buffer.getvalue()
    weights, meta_path = stem.with_suffix(".pt"), stem.with_suffix(".json")
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # the entry is incomplete until the new .json lands
    _atomic_write(weights, blob)
    _atomic_write(meta_path, json.dumps({**meta, "weights_sha256": hashlib.sha256(blob).hexdigest()}, indent=2,
                                        sort_keys=True, default=repr).encode())


def _build(zoo_name: str, info: DatasetInfo, model_kwargs: Mapping[str, Any], seed: int) -> nn.Module:
    """``zoo.create`` with the class count and input geometry the data set implies (where the model takes
    them), then the caller's ``model_kwargs``; weights initialised from ``seed``."""
    from accelflow.zoo import create, options

    accepted = options(zoo_name)
    implied: dict[str, Any] = {"num_classes": info.num_classes}
    if info.is_image:
        implied["in_channels"] = info.input_shape[0]
        implied["input_size"] = info.input_shape[-1]
    else:
        implied["in_features"] = info.input_shape[0]
    kwargs = {k: v for k, v in implied.items() if k in accepted}
    kwargs.update(model_kwargs)
    kwargs.setdefault("seed", seed)
    return create(zoo_name, **kwargs)


def _default_dataset(zoo_name: str) -> str:
    from accelflow.zoo import spec

    return str(spec(zoo_name).default_dataset)


def cached_model(
    zoo_name: str,
    dataset: str | None = None,
    recipe: TrainRecipe | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    data_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    num_threads: int | None = None,
) -> tuple[nn.Module, CacheInfo]:
    """A zoo model trained on ``dataset``, from the cache when possible, else trained and cached.

    ``dataset`` defaults to the zoo spec's ``default_dataset``; ``recipe`` to :func:`default_recipe`;
    ``model_kwargs`` go to ``accelflow.zoo.create`` (after ``num_classes`` and ``in_channels`` /
    ``in_features`` taken from the data set); ``data_kwargs`` go to :func:`accelflow.data.load`.
    The model is initialised with ``create(..., seed=recipe.seed)`` and returned in eval mode;
    ``progress`` and ``num_threads`` are passed to :func:`accelflow.train.train` on a miss.
    """
    dataset = dataset or _default_dataset(zoo_name)
    recipe = recipe or default_recipe(zoo_name)
    model_kwargs = dict(model_kwargs or {})
    splits: Splits = load(dataset, **dict(data_kwargs or {}))
    return _load_or_train(cache_key(zoo_name, model_kwargs, splits.fingerprint, recipe),
                          lambda: _build(zoo_name, splits.info, model_kwargs, recipe.seed), splits, recipe,
                          name=zoo_name, dataset=dataset, model_kwargs=model_kwargs,
                          data_kwargs=dict(data_kwargs or {}), progress=progress, num_threads=num_threads)


def cached_training(
    model: nn.Module,
    splits: Splits,
    recipe: TrainRecipe = FALLBACK_RECIPE,
    *,
    name: str,
    source: str = "",
    progress: bool = True,
    num_threads: int | None = None,
) -> tuple[nn.Module, CacheInfo]:
    """A trained copy of ``model`` (any module, e.g. one built from the user's model file) from the cache,
    else trained from its current weights with ``recipe`` on ``splits`` and cached; ``model`` itself is left
    as it was.

    The key covers the starting weights and printed architecture (:func:`weights_digest`), ``source`` (what
    the printed architecture does not show: e.g. a sha256 of the file that defines ``forward``), the data
    fingerprint and the recipe, so the same untrained model trains once. Build ``model`` from a fixed seed,
    or its random initial weights make every key new. ``name`` only labels the entry (``accelflow cache``):
    the same model under another name (a CLI run and a flow on one file) finds the same entry.
    """
    import copy

    key = cache_key("", {"initial_weights": weights_digest(model), "source": source}, splits.fingerprint, recipe)
    return _load_or_train(key, lambda: copy.deepcopy(model), splits, recipe, name=name, dataset=splits.info.name,
                          model_kwargs={"source": source}, data_kwargs={}, progress=progress,
                          num_threads=num_threads)


def _load_or_train(key: str, build: Callable[[], nn.Module], splits: Splits, recipe: TrainRecipe, *, name: str,
                   dataset: str, model_kwargs: Mapping[str, Any], data_kwargs: Mapping[str, Any], progress: bool,
                   num_threads: int | None) -> tuple[nn.Module, CacheInfo]:
    """Entry ``key`` loaded into ``build()``, else a fresh ``build()`` (a failed load may have half-filled the
    first) trained with ``recipe`` on ``splits`` and stored; in eval mode either way."""
    stem = weights_cache_dir() / key
    weights = stem.with_suffix(".pt")
    model = build()
    meta = load_weights(model, stem)
    if meta is not None:
        log.info("loaded cached %s on %s from %s", name, dataset, weights)
        return model.eval(), CacheInfo(key, weights, True, meta["val_accuracy"], meta["test_accuracy"])
    model = build()
    log.info("training %s on %s (%s)", name, dataset, recipe)
    result: TrainResult = train(model, splits, recipe, progress=progress, num_threads=num_threads)
    _store(model, result, stem, zoo_name=name, dataset=dataset, model_kwargs=model_kwargs, data_kwargs=data_kwargs,
           recipe=recipe, fingerprint=splits.fingerprint)
    return model.eval(), CacheInfo(key, weights, False, result.val_accuracy, result.test_accuracy)


def _store(model: nn.Module, result: TrainResult, stem: Path, *, zoo_name: str,
           dataset: str, model_kwargs: Mapping[str, Any], data_kwargs: Mapping[str, Any],
           recipe: TrainRecipe, fingerprint: str) -> None:
    save_weights(model, stem, {
        "zoo": zoo_name,
        "dataset": dataset,
        "model_kwargs": dict(model_kwargs),
        "data_kwargs": dict(data_kwargs),
        "data_fingerprint": fingerprint,
        "recipe": recipe.to_dict(),
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "epochs": result.epochs,
        "train_seconds": result.seconds,
        "history": [asdict(h) for h in result.history],
        "torch_version": torch.__version__,
        "cache_version": CACHE_VERSION,
    })


@dataclass(frozen=True)
class CacheEntry:
    """One entry of a weights directory written by :func:`save_weights`: ``<key>.pt`` and ``<key>.json``.
    ``complete`` is False for leftovers of an interrupted write (a ``.pt`` without its ``.json``, or a
    temporary file), which :func:`load_weights` never trusts; ``meta`` is the ``.json`` ({} if unreadable)."""

    key: str
    files: tuple[Path, ...]
    size_bytes: int
    modified: float
    complete: bool
    meta: Mapping[str, Any]

    @property
    def age_days(self) -> float:
        return (time.time() - self.modified) / 86400.0


def cache_entries(directory: Path) -> list[CacheEntry]:
    """The entries in ``directory`` (not its subdirectories), oldest first; [] if it does not exist."""
    if not directory.is_dir():
        return []
    groups: dict[str, list[Path]] = {}
    for path in directory.iterdir():
        if not path.is_file():
            continue
        if path.suffix == ".tmp":  # .<key>.pt.<random>.tmp from _atomic_write
            key = path.name.lstrip(".").split(".", 1)[0]
        elif path.suffix in (".pt", ".json"):
            key = path.stem
        else:
            continue
        groups.setdefault(key, []).append(path)
    entries = []
    for key, found in groups.items():
        stats, files = [], []
        for f in found:  # a temporary file may be renamed away by a writer meanwhile
            try:
                stats.append(f.stat())
            except FileNotFoundError:
                continue
            files.append(f)
        if not files:
            continue
        meta_path = directory / f"{key}.json"
        complete = meta_path in files and (directory / f"{key}.pt") in files
        try:
            meta = json.loads(meta_path.read_text()) if complete else {}
        except (OSError, ValueError):
            meta, complete = {}, False
        entries.append(CacheEntry(key, tuple(sorted(files)), sum(s.st_size for s in stats),
                                  max(s.st_mtime for s in stats), complete, meta))
    return sorted(entries, key=lambda e: e.modified)


def remove_entries(entries: Iterable[CacheEntry]) -> int:
    """Delete ``entries`` (the ``.json`` first, so a reader never sees a complete-looking half entry) and
    return the bytes freed. Files already gone (another process cleaning) are skipped."""
    freed = 0
    for entry in entries:
        for path in sorted(entry.files, key=lambda f: f.suffix != ".json"):
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            freed += size
    return freed
