"""Zoo conformance: every model builds, runs, traces and matches its published cost; the registry and the
thresholded activation behave as documented."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from accelflow.errors import ConfigError
from accelflow.zoo import (
    ModelFamily,
    ThresholdReLU,
    ZooSpec,
    activation_names,
    create,
    names,
    options,
    replace_activations,
    spec,
)

ALL = names()
EXPECTED = {
    "jet_dnn", "digits_mlp", "fmnist_mlp", "lenet5", "vgg7", "resnet8", "resnet20", "resnet18", "resnet50",
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v2_tiny", "mobilenet_v3_tiny",
    "tc_resnet8", "shufflenet_v2", "convnext_tiny", "convnext_nano", "vit_tiny", "vit_nano", "bert_tiny",
    "gpt2_tiny", "gpt2_small",
}  # fmt: skip
#: Models whose forward pass at the spec's input takes long on a CPU (GPT-2 small: 1,024 tokens, 124 M weights).
SLOW = {"gpt2_small"}
ACTIVATIONS = nn.ReLU | nn.ReLU6 | nn.Hardswish | nn.Hardsigmoid | nn.GELU | nn.Tanh | nn.Softmax


def forward_counting_macs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Run ``model(x)`` and return the output and its multiply-accumulates per sample: PyTorch's
    ``FlopCounterMode`` FLOPs / 2 (convolutions, matrix products of weights and of activations)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x)
    return out, counter.get_total_flops() // 2 // x.shape[0]


def example_input(s: ZooSpec, batch: int = 2) -> torch.Tensor:
    """A seeded batch for the model: float features, or token ids below 1,000 for a language model."""
    gen = torch.Generator().manual_seed(0)
    if s.input_dtype == "int64":
        return torch.randint(0, 1000, (batch, *s.input_shape), generator=gen)
    return torch.randn(batch, *s.input_shape, generator=gen)


def output_shape(s: ZooSpec, batch: int) -> tuple[int, ...]:
    """Logits per sample, or per token for a decoder's LM head."""
    return (batch, *s.input_shape, s.num_classes) if s.name.startswith("gpt2") else (batch, s.num_classes)


@dataclass(frozen=True)
class Built:
    """A zoo model with one batch-of-2 forward pass already run (the 224x224 models are slow on a CPU)."""

    spec: ZooSpec
    model: nn.Module
    x: torch.Tensor
    out: torch.Tensor
    macs: int


@pytest.fixture(scope="module", params=[pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in ALL])
def built(request: pytest.FixtureRequest) -> Built:
    s = spec(request.param)
    model = create(request.param)
    x = example_input(s)
    out, macs = forward_counting_macs(model, x)
    return Built(s, model, x, out, macs)


# ------------------------------------------------------------------------------------- every model


def test_registry_lists_expected_models() -> None:
    assert set(ALL) == EXPECTED
    assert len(ALL) == len(set(ALL))


def test_spec_is_consistent(built: Built) -> None:
    s = built.spec
    assert isinstance(s.family, ModelFamily)
    assert s.family in set(ModelFamily)
    opts = options(s.name)
    assert opts.get("num_classes", opts.get("vocab_size")) == s.num_classes
    if s.family == "lm":
        assert s.input_dtype == "int64" and len(s.input_shape) == 1 and "vocab_size" in opts
    elif "in_channels" in opts:
        assert opts["in_channels"] == s.input_shape[0] and s.input_dtype == "float32"
        assert opts.get("input_size", s.input_shape[-1]) == s.input_shape[-1]
    else:
        assert opts["in_features"] == s.input_shape[0]


def test_forward_shape_and_eval_mode(built: Built) -> None:
    assert not built.model.training
    assert built.out.shape == output_shape(built.spec, 2)
    assert torch.isfinite(built.out).all()


def test_fx_traceable_and_equivalent(built: Built) -> None:
    traced = torch.fx.symbolic_trace(built.model)
    with torch.no_grad():
        torch.testing.assert_close(traced(built.x), built.out)


def test_each_activation_module_is_called_once(built: Built) -> None:
    # Per-layer thresholds need one module per activation site: no instance shared or called twice.
    model = built.model
    kinds = ACTIVATIONS
    refs = [m for _, m in model.named_modules(remove_duplicate=False) if isinstance(m, kinds)]
    assert len(refs) == len({id(m) for m in refs})
    traced = torch.fx.symbolic_trace(model)
    called = [
        node.target
        for node in traced.graph.nodes
        if node.op == "call_module" and isinstance(traced.get_submodule(node.target), kinds)
    ]
    assert len(called) == len(set(called)) == len(refs)


def test_reference_macs_within_two_percent(built: Built) -> None:
    s = built.spec
    if s.reference_macs is None:
        pytest.skip(f"{s.name} has no published MAC count")
    assert built.macs == pytest.approx(s.reference_macs, rel=0.02), f"{s.name}: counted {built.macs:,}"


def test_deterministic_init_and_seed() -> None:
    a, b, c = create("resnet8"), create("resnet8"), create("resnet8", seed=1)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name, value in sa.items():
        assert torch.equal(value, sb[name]), name
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_create_does_not_disturb_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    create("lenet5", seed=7)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------------------------- specific models


def test_jet_dnn_structure() -> None:
    model = create("jet_dnn")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widths = [linears[0].in_features] + [m.out_features for m in linears]
    assert widths == [16, 64, 32, 32, 5]
    assert sum(m.weight.numel() for m in linears) == 4256
    assert not any(isinstance(m, nn.Softmax) for m in model.modules())
    assert spec("jet_dnn").default_dataset == "synthetic_jets"


def test_imagenet_parameter_counts_match_torchvision() -> None:
    # torchvision's published parameter counts pin the layouts down more tightly than MACs do.
    expected = {"resnet18": 11_689_512, "mobilenet_v3_small": 2_542_856}
    for name, params in expected.items():
        assert sum(p.numel() for p in create(name).parameters()) == params, name


def test_modern_parameter_counts_match_the_references() -> None:
    # torchvision's ShuffleNetV2 x1.0 and ConvNeXt-T, timm's ViT-Ti/16, google/bert_uncased_L-2_H-128_A-2
    # (BertModel, pooler included, + our 2-class classifier), Hugging Face's gpt2 (tied head).
    expected = {"shufflenet_v2": 2_278_604, "convnext_tiny": 28_589_128, "vit_tiny": 5_717_416,
                "bert_tiny": 4_385_920 + 258, "gpt2_small": 124_439_808}
    for name, params in expected.items():
        with torch.device("meta"):  # shapes only: no memory, no init time
            model = create(name)
        assert sum(p.numel() for p in model.parameters()) == params, name


def test_channel_shuffle_interleaves_the_two_halves() -> None:
    from accelflow.zoo.shufflenet import channel_shuffle

    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_gpt2_is_causal_and_ties_its_head_to_the_embedding() -> None:
    model = create("gpt2_tiny", vocab_size=97)
    ids = torch.randint(0, 97, (1, 16), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 97
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])  # no position looks ahead
    assert not torch.allclose(a[:, 10:], b[:, 10:])
    assert all(p is not model.wte.weight for n, p in model.named_parameters() if n != "wte.weight")
    with torch.no_grad():
        model.wte.weight[5].zero_()
        assert torch.all(model(ids)[..., 5] == 0)  # logit of token 5 = hidden . wte[5]


def test_bert_attends_both_ways() -> None:
    model = create("bert_tiny", vocab_size=97)
    ids = torch.randint(0, 97, (1, 16), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 97
    with torch.no_grad():
        assert not torch.allclose(model(ids), model(changed))  # the last token reaches the first


@pytest.mark.parametrize(
    ("name", "kwargs", "x_shape", "n_out"),
    [
        ("resnet8", {"in_channels": 3}, (2, 3, 32, 32), 10),
        ("resnet20", {"in_channels": 3, "num_classes": 100}, (2, 3, 32, 32), 100),
        ("vgg7", {"in_channels": 3, "input_size": 32}, (2, 3, 32, 32), 10),
        ("lenet5", {"num_classes": 4}, (2, 1, 28, 28), 4),
        ("mobilenet_v2_tiny", {"width_mult": 0.5}, (2, 1, 28, 28), 10),
        ("mobilenet_v3_tiny", {"in_channels": 3}, (2, 3, 32, 32), 10),
        ("tc_resnet8", {"num_classes": 35}, (2, 40, 101), 35),
        ("shufflenet_v2", {"in_channels": 1, "num_classes": 10}, (2, 1, 64, 64), 10),
        ("convnext_nano", {"in_channels": 3, "dims": (8, 16), "depths": (1, 1)}, (2, 3, 32, 32), 10),
        ("vit_nano", {"patch_size": 7, "dim": 32, "heads": 2}, (2, 1, 28, 28), 10),
        ("vit_tiny", {"input_size": 32, "num_classes": 5}, (2, 3, 32, 32), 5),
    ],
)
def test_option_overrides(name: str, kwargs: dict[str, object], x_shape: tuple[int, ...], n_out: int) -> None:
    with torch.no_grad():
        assert create(name, **kwargs)(torch.randn(*x_shape)).shape == (x_shape[0], n_out)


def test_width_mult_shrinks_mobilenet() -> None:
    full = sum(p.numel() for p in create("mobilenet_v3_small").parameters())
    half = sum(p.numel() for p in create("mobilenet_v3_small", width_mult=0.5).parameters())
    assert half < full


# ------------------------------------------------------------------------------------------- errors


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ConfigError) as err:
        create("resnet1000")
    assert "resnet1000" in str(err.value)
    for name in ALL:
        assert name in str(err.value)
    with pytest.raises(ConfigError):
        spec("nope")


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError, match="depth") as err:
        create("resnet18", depth=34)
    assert "num_classes" in str(err.value)
    with pytest.raises(ConfigError, match="width_mult"):
        create("resnet18", width_mult=0.5)


# ------------------------------------------------------------------------------ thresholded ReLU


def test_threshold_relu_numerics() -> None:
    x = torch.tensor([-1.0, 0.0, 0.2, 0.5, 0.7, 7.0])
    assert torch.equal(ThresholdReLU()(x), torch.relu(x))
    assert torch.equal(ThresholdReLU(0.5)(x), torch.tensor([0.0, 0.0, 0.0, 0.0, 0.7, 7.0]))
    assert torch.equal(ThresholdReLU(0.0, clip=6.0)(x), nn.ReLU6()(x))
    assert torch.equal(ThresholdReLU(0.5, clip=6.0)(x), torch.tensor([0.0, 0.0, 0.0, 0.0, 0.7, 6.0]))
    act = ThresholdReLU()
    act.threshold = 0.6
    assert torch.equal(act(x), torch.tensor([0.0, 0.0, 0.0, 0.0, 0.7, 7.0]))


def test_replace_activations_replaces_all_and_keeps_original() -> None:
    original = create("mobilenet_v2_tiny")
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        before = original(x)
    names_before = activation_names(original)
    new = replace_activations(original, 0.0)

    assert activation_names(new) == names_before
    assert not any(type(m) in (nn.ReLU, nn.ReLU6) for m in new.modules())
    assert all(isinstance(new.get_submodule(n), ThresholdReLU) for n in names_before)
    assert all(new.get_submodule(n).clip == 6.0 for n in names_before)  # MobileNetV2 uses ReLU6 only
    assert all(type(original.get_submodule(n)) is nn.ReLU6 for n in names_before)
    assert not new.training
    with torch.no_grad():
        torch.testing.assert_close(new(x), before)  # threshold 0 is exactly ReLU6
        torch.testing.assert_close(original(x), before)
    torch.fx.symbolic_trace(new)


def test_replace_activations_per_layer() -> None:
    model = create("lenet5")
    new = replace_activations(model, {"features.relu1": 0.25})
    assert new.get_submodule("features.relu1").threshold == 0.25
    assert new.get_submodule("classifier.relu3").threshold == 0.0
    assert new.get_submodule("classifier.relu3").clip is None
    again = replace_activations(new, {"features.relu1": 0.5})  # re-applicable during a search
    assert again.get_submodule("features.relu1").threshold == 0.5
    assert new.get_submodule("features.relu1").threshold == 0.25
    with pytest.raises(ConfigError, match="fc1"):
        replace_activations(model, {"classifier.fc1": 0.1})


def test_higher_threshold_gives_sparser_activations() -> None:
    model = create("resnet8")
    x = torch.randn(4, 1, 28, 28)

    def zero_fraction(m: nn.Module) -> float:
        zeros, total = 0, 0

        def hook(_m: nn.Module, _i: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            nonlocal zeros, total
            zeros += int((out == 0).sum())
            total += out.numel()

        handles = [mod.register_forward_hook(hook) for mod in m.modules() if isinstance(mod, ThresholdReLU)]
        with torch.no_grad():
            m(x)
        for h in handles:
            h.remove()
        return zeros / total

    assert zero_fraction(replace_activations(model, 0.5)) > zero_fraction(replace_activations(model, 0.0))


# ----------------------------------------------------------------------------------------- export


def test_lenet5_exports_to_onnx(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "lenet5.onnx"
    torch.onnx.export(create("lenet5"), (torch.randn(1, 1, 28, 28),), str(path))
    graph = onnx.load(str(path)).graph
    onnx.checker.check_model(onnx.load(str(path)))
    assert {"Conv", "Gemm", "MaxPool", "Relu"} <= {node.op_type for node in graph.node}
