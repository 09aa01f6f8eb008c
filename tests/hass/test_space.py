"""Search-space mapping and ReLU-to-conv links."""

from __future__ import annotations

import numpy as np
import pytest

from accelflow.hass import Thresholds, conv_input_activations
from accelflow.zoo import create


def test_links_follow_relus_through_pooling() -> None:
    assert conv_input_activations(create("lenet5")) == {"features.conv2": "features.relu1"}
    links = conv_input_activations(create("resnet8"))
    assert links["layer1.0.conv2"] == "layer1.0.relu1"
    assert links["layer2.0.conv1"] == "layer1.0.relu2" and links["layer2.0.shortcut.0"] == "layer1.0.relu2"
    assert "conv1" not in links  # fed by the image


def test_fraction_maps_to_magnitude_quantile(evaluator) -> None:
    space = evaluator.space
    assert space.convs == ("0", "3", "7")
    assert set(space.activations) == {"2", "5"}  # the ReLUs feeding convs (5 through max pooling)
    thr = space.thresholds({"w:3": 0.5, "a:2": 0.25})
    mags = space.weight_magnitudes["3"]
    assert np.mean(mags < thr.weight["3"]) == pytest.approx(0.5, abs=0.01)
    assert thr.weight["0"] == 0.0 and thr.activation["5"] == 0.0
    assert thr.activation["2"] == pytest.approx(0.25 * space.activation_scale["2"])
    back = space.params(thr)
    assert back["w:3"] == pytest.approx(0.5, abs=0.01) and back["a:2"] == pytest.approx(0.25)


def test_thresholds_apply_prunes_a_copy(trained) -> None:
    thr = Thresholds({"3": 0.05}, {"2": 0.1})
    pruned = thr.apply(trained)
    assert pruned is not trained
    w = pruned[3].weight.detach()
    assert bool((w == 0).any()) and not bool((trained[3].weight == 0).any())
    assert pruned[2].threshold == pytest.approx(0.1)
