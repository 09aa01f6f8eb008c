"""`accelflow cache`: lists trained and fine-tuned entries; --clear removes only what it is asked to."""

import json
import os
import time

import pytest

from accelflow.cli.main import main
from accelflow.data import load
from accelflow.hass import FineTune, Thresholds, finetune_cache_dir
from accelflow.train import CACHE_ENV, TrainRecipe, cached_model, weights_cache_dir


@pytest.fixture
def filled(tmp_path, monkeypatch):
    """One trained digits MLP, one fine-tuning of it, one leftover of an interrupted write."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model, info = cached_model("digits_mlp", "digits", recipe=TrainRecipe(epochs=1, batch_size=64),
                               data_kwargs={"limit_train": 300}, progress=False, num_threads=1)
    FineTune(load("digits").train, steps=3, batch_size=16, cache_dir=finetune_cache_dir())(model, Thresholds({}, {}))
    stale = weights_cache_dir() / "0123abcd.pt"
    stale.write_bytes(b"half")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    return info


def _json(capsys, *args):
    assert main(["cache", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_cache_lists_both_kinds(filled, capsys):
    rows = _json(capsys)
    kinds = sorted((r["cache"], r["complete"]) for r in rows)
    assert kinds == [("finetuned", True), ("trained", False), ("trained", True)]
    trained = next(r for r in rows if r["cache"] == "trained" and r["complete"])
    assert trained["key"] == filled.key and trained["meta"]["zoo"] == "digits_mlp"
    tuned = next(r for r in rows if r["cache"] == "finetuned")
    assert tuned["meta"]["model"] == "MLP" and tuned["meta"]["recipe"]["steps"] == 3
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "digits_mlp on digits" in out and "MLP, 3 steps" in out and "incomplete" in out


def test_clear_removes_only_the_chosen_kind(filled, capsys):
    (weights_cache_dir() / "feed.pt").write_bytes(b"being written")  # may be another process's write
    removed = _json(capsys, "--clear", "incomplete")["removed"]
    assert removed == [{"cache": "trained", "key": "0123abcd"}]
    assert _json(capsys, "--clear", "finetuned", "--older-than", "1")["removed"] == []  # written just now
    assert [r["cache"] for r in _json(capsys, "--clear", "finetuned")["removed"]] == ["finetuned"]
    assert sorted((r["key"], r["complete"]) for r in _json(capsys)) == [(filled.key, True), ("feed", False)]
    assert cached_model("digits_mlp", "digits", recipe=TrainRecipe(epochs=1, batch_size=64),
                        data_kwargs={"limit_train": 300}, progress=False)[1].hit


def test_bad_cache_options_name_the_flag(filled, capsys):
    assert main(["cache", "--older-than", "2"]) == 2
    assert "--older-than only applies with --clear" in capsys.readouterr().err
    assert main(["cache", "--clear", "all", "--older-than", "-1"]) == 2
    assert "--older-than -1" in capsys.readouterr().err
