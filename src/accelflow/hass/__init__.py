"""HASS: hardware-aware sparsity search for layer-pipelined dataflow accelerators (Yu et al., FPL 2024).

Per-layer weight magnitude and activation thresholds are searched with Optuna; every trial measures the
accuracy and the zero-product histograms of the thresholded network and re-optimises the folding of the
dataflow accelerator (:mod:`accelflow.dataflow`), maximising throughput (or throughput per DSP) subject to
an accuracy-drop bound that the returned design never violates.

Example::

    from accelflow.dataflow import load_device
    from accelflow.hass import Evaluator, SearchSettings, build_space, run_search, uniform_baseline

    space = build_space(model, calib_x)
    ev = Evaluator(model, (1, 28, 28), val_split, calib_x, load_device("zc706"), space, name="resnet8")
    result = run_search(ev, SearchSettings(max_accuracy_drop=1.0, trials=40, storage="sqlite:///hass.db"))
    print(result.throughput_images_per_s / result.dense_throughput_images_per_s, result.accuracy_drop)
"""

from accelflow.hass._baselines import (
    dense_baseline,
    scan_uniform_grid,
    slowest_layer_baseline,
    uniform_baseline,
    uniform_grid,
)
from accelflow.hass._errors import HassError
from accelflow.hass._evaluate import (
    CALIBRATION_BATCH,
    WINDOW_POSITIONS,
    DropEstimate,
    Evaluation,
    Evaluator,
    accuracy,
    calibration_batches,
    drop_estimates,
    hits,
    paired_drop,
    within_bound,
)
from accelflow.hass._finetune import FineTune, finetune_cache_dir
from accelflow.hass._recover import Recovered, pareto_order, recover
from accelflow.hass._result import HassResult, LayerResult, TrialRecord, make_result
from accelflow.hass._search import (
    BASELINES,
    DEFAULT_STORAGE,
    SearchSettings,
    ask,
    best_trial,
    create_study,
    feasible_trials,
    run_search,
    study_baselines,
    tell,
    trial_records,
    warm_start_points,
)
from accelflow.hass._setup import Problem, calibration_images, problem, subset, zoo_problem
from accelflow.hass._space import (
    Objective,
    SamplerKind,
    Thresholds,
    ThresholdSpace,
    build_space,
    conv_input_activations,
)

__all__ = [
    "CALIBRATION_BATCH",
    "WINDOW_POSITIONS",
    "calibration_batches",
    "calibration_images",
    "BASELINES",
    "DEFAULT_STORAGE",
    "DropEstimate",
    "Evaluation",
    "Evaluator",
    "FineTune",
    "finetune_cache_dir",
    "HassError",
    "HassResult",
    "LayerResult",
    "Objective",
    "SamplerKind",
    "SearchSettings",
    "ThresholdSpace",
    "Thresholds",
    "TrialRecord",
    "accuracy",
    "ask",
    "best_trial",
    "build_space",
    "conv_input_activations",
    "create_study",
    "dense_baseline",
    "drop_estimates",
    "feasible_trials",
    "hits",
    "make_result",
    "pareto_order",
    "paired_drop",
    "recover",
    "run_search",
    "scan_uniform_grid",
    "slowest_layer_baseline",
    "study_baselines",
    "tell",
    "trial_records",
    "warm_start_points",
    "uniform_baseline",
    "uniform_grid",
    "within_bound",
    "Recovered",
    "Problem",
    "problem",
    "subset",
    "zoo_problem",
]
