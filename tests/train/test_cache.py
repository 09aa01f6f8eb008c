"""Trained-weight cache: hits, keys, atomic entries and recovery from corrupt files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from accelflow.train import (
    CACHE_ENV,
    TrainRecipe,
    cache_entries,
    cached_model,
    default_recipe,
    remove_entries,
    weights_cache_dir,
)

RECIPE = TrainRecipe(epochs=3, batch_size=64, lr=3e-3, seed=0)
DATA = {"limit_train": 600}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return weights_cache_dir()


def _get(**overrides):
    kwargs = {"recipe": RECIPE, "data_kwargs": DATA, "progress": False, "num_threads": 1} | overrides
    return cached_model("digits_mlp", "digits", **kwargs)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sb = b.state_dict()
    return all(torch.equal(t, sb[n]) for n, t in a.state_dict().items())


def test_second_call_is_a_hit(cache: Path) -> None:
    model, info = _get()
    assert not info.hit and info.path.parent == cache and info.path.exists()
    assert not model.training
    meta = json.loads(info.path.with_suffix(".json").read_text())
    assert meta["recipe"]["epochs"] == 3 and meta["test_accuracy"] == info.test_accuracy
    assert meta["torch_version"] == torch.__version__
    again, info2 = _get()
    assert info2.hit and info2.key == info.key
    assert (info2.val_accuracy, info2.test_accuracy) == (info.val_accuracy, info.test_accuracy)
    assert _same_weights(model, again)
    assert sorted(p.name for p in cache.iterdir()) == sorted([f"{info.key}.pt", f"{info.key}.json"])


def test_key_depends_on_recipe_data_and_model(cache: Path) -> None:
    _, base = _get()
    _, other_recipe = _get(recipe=TrainRecipe(epochs=2, batch_size=64, lr=3e-3))
    _, other_data = _get(data_kwargs={"limit_train": 500})
    _, other_model = _get(model_kwargs={"hidden": (32,)})
    keys = {base.key, other_recipe.key, other_data.key, other_model.key}
    assert len(keys) == 4 and not any(i.hit for i in (other_recipe, other_data, other_model))


def test_truncated_weights_are_retrained(cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    model, info = _get()
    blob = info.path.read_bytes()
    info.path.write_bytes(blob[: len(blob) // 2])
    with caplog.at_level(logging.WARNING, logger="accelflow.train"):
        retrained, info2 = _get()
    assert not info2.hit
    assert any("unusable" in r.message for r in caplog.records)
    assert _same_weights(model, retrained)  # deterministic retraining gives the same weights
    assert _get()[1].hit


def test_unreadable_metadata_is_retrained(cache: Path) -> None:
    _, info = _get()
    info.path.with_suffix(".json").write_text("{not json")
    assert not _get()[1].hit


def test_weights_without_metadata_are_not_trusted(cache: Path) -> None:
    _, info = _get()
    info.path.with_suffix(".json").unlink()  # as after an interruption between the two writes
    assert not _get()[1].hit


def test_default_recipes_exist_for_the_fashion_models() -> None:
    assert default_recipe("lenet5").epochs >= 1
    assert default_recipe("no_such_model") == default_recipe("another_unknown")


def test_entries_list_complete_and_interrupted_writes(cache: Path) -> None:
    _, info = _get()
    (cache / "deadbeef.pt").write_bytes(b"half")  # a .pt whose .json never landed
    (cache / f".{info.key}.pt.x1y2.tmp").write_bytes(b"tmp")  # an interrupted atomic write
    (cache / "notes.txt").write_text("not an entry")
    entries = {e.key: e for e in cache_entries(cache)}
    assert set(entries) == {info.key, "deadbeef"}
    done = entries[info.key]
    assert done.complete and done.meta["test_accuracy"] == info.test_accuracy
    assert len(done.files) == 3 and done.size_bytes == sum(f.stat().st_size for f in done.files)
    assert not entries["deadbeef"].complete and entries["deadbeef"].meta == {}
    assert cache_entries(cache / "missing") == []


def test_removed_entries_are_rebuilt(cache: Path) -> None:
    _, info = _get()
    [entry] = cache_entries(cache)
    assert remove_entries([entry]) == entry.size_bytes
    assert remove_entries([entry]) == 0  # already gone: nothing to free, no error
    assert cache_entries(cache) == [] and not _get()[1].hit
