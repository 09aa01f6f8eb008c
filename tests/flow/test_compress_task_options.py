"""Options of the DNN-level compression tasks used by the MetaML benchmark recipe: global/gradual pruning and
low-bit QAT with per-layer integer bits, run through the engine on the trained digits MLP."""

from __future__ import annotations

from pathlib import Path

import torch

from accelflow.compress import PruneScope, prunable_layers, weight_sparsity, weight_types_for_bits
from accelflow.flow import DesignState, Flow, Step, run_flow
from accelflow.flow.tasks.compress_tasks import Prune, QuantizeAware
from accelflow.train import cached_model


def test_global_gradual_prune_then_per_layer_qat(tmp_path: Path) -> None:
    model, _ = cached_model("digits_mlp", "digits")
    start = DesignState(model=model, model_name="digits_mlp", dataset="digits", input_shape=(64,))
    prune = Prune(tolerance=0.05, start_rate=0.6, min_step=0.3, scope=PruneScope.GLOBAL, steps=2,
                  finetune_epochs=1, batch_size=64)
    qat = QuantizeAware(weight_bits=4, per_layer_integer=True, activation_bits=0, epochs=1, batch_size=64)
    state = run_flow(Flow("pq", (Step(prune), Step(qat))), start, scratch_dir=str(tmp_path)).state
    assert state.metric("prune.rate") == 0.6 and state.model is not None
    assert weight_sparsity(state.model) >= 0.6 - 1e-3  # QAT keeps the zeros (rounding may add some)
    per_layer = [float((m.weight == 0).float().mean()) for _, m in prunable_layers(state.model)]
    assert max(per_layer) - min(per_layer) > 0.05  # one global threshold: layers differ
    expected = weight_types_for_bits(model, 4)
    for name, mod in prunable_layers(state.model):
        codes = mod.weight.detach().double() / expected[name].lsb
        assert torch.equal(codes, torch.round(codes))  # 4-bit grid with the layer's own integer bits
