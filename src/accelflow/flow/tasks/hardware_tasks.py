"""Tasks that bring the other two systems into a design flow.

* ``train_cached``: the zoo model trained on its data set through the trained-weight cache.
* ``perf_estimate``: latency of the current network on a described accelerator (AIDG fast mode).
* ``dataflow``: the layer-pipelined FPGA design of the current network (folding optimised).
* ``hass``: hardware-aware sparsity search on that dataflow target; the state's model becomes the
  thresholded, weight-pruned network that the search chose.
Each writes its full report as a JSON artefact and its headline numbers as metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelflow.flow.state import DesignState, MetricKey, StateField
from accelflow.flow.task import Task, TaskContext, param

__all__ = ["TrainCached", "PerfEstimate", "DataflowTask", "HassTask"]


def _write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(payload if isinstance(payload, str) else json.dumps(payload, indent=1))
    tmp.replace(path)
    return path


@dataclass
class TrainCached(Task):
    """Load (or train once and cache) the state's model on its data set: a zoo model with its default
    recipe, a model file's untrained model with the fallback recipe (keyed by its initial weights and the
    file's sha256)."""

    name = "train_cached"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (StateField.TRAINED, MetricKey("train", "accuracy"), MetricKey("train", "val_accuracy"))

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        from accelflow.errors import ConfigError
        from accelflow.flow.tasks.training import from_weights_cache, train_through_cache
        from accelflow.train import cached_model
        from accelflow.zoo import names

        if "model_file_sha256" in state.info:
            if "accuracy" in state.metrics.get("train", {}):
                raise ConfigError(f"train_cached trains untrained models; {state.model_name} starts trained "
                                  "(start.weights): drop the step, or use task train to train it further")
            return train_through_cache(state, progress=ctx.progress)
        if state.model_name is None or state.model_name not in names():
            raise ConfigError(f"train_cached trains zoo models and PyTorch model files through the weights cache; "
                              f"the flow starts from {state.model_name or 'no model'}: start from one of those, "
                              "or use task train")
        model, info = cached_model(state.model_name, state.dataset, data_kwargs=dict(state.data_kwargs),
                                   progress=ctx.progress)
        return from_weights_cache(state, model, info)


@dataclass
class PerfEstimate(Task):
    """Latency of the network on an accelerator described as data (``accelflow estimate``'s model)."""

    name = "perf_estimate"
    needs = (StateField.MODEL,)
    produces = (MetricKey("perf", "total_cycles"),)

    arch: str = param("gemmini", help="template spec (e.g. 'systolic:rows=16,cols=16') or a YAML path")
    mode: str = param("fast", choices=("fast", "full", "roofline", "regression"))

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        from accelflow.arch import parse_arch_spec
        from accelflow.perf import Mode, estimate

        report = estimate(state.graph(), parse_arch_spec(self.arch), Mode(self.mode))
        path = _write_json(ctx.path("perf.json"), report.to_json())
        return state.with_artefact("perf_report", path).with_metrics(
            "perf",
            total_cycles=report.total_cycles,
            instructions_total=report.instructions_total,
            instructions_evaluated=report.instructions_evaluated,
            wall_seconds=report.wall_seconds,
        )


def _design_metrics(design: Any) -> dict[str, float]:
    r = design.resources
    return {"throughput_images_per_s": design.throughput_images_per_s, "dsp": r.dsp, "lut": r.lut,
            "ff": r.ff, "bram18": r.bram18}


@dataclass
class DataflowTask(Task):
    """Dense layer-pipelined FPGA design of the network with the folding optimised for a device."""

    name = "dataflow"
    needs = (StateField.MODEL,)
    produces = (MetricKey("dataflow", "throughput_images_per_s"),)

    device: str = param("zcu102", help="device name, see `accelflow dataflow --help`")
    method: str = param("greedy", choices=("greedy", "anneal"))
    batch: int = param(256, low=1, high=1 << 20)

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        from accelflow.dataflow import Method, load_device, optimise_folding

        design = optimise_folding(state.graph(), load_device(self.device), Method(self.method), batch=self.batch)
        path = _write_json(ctx.path("dataflow.json"), design.to_json())
        return state.with_artefact("dataflow_design", path).with_metrics("dataflow", **_design_metrics(design))


@dataclass
class HassTask(Task):
    """Hardware-aware sparsity search on a dataflow FPGA target (per-layer weight/activation thresholds).

    Accuracy is measured on ``validation_size`` validation images, sparsity on ``calibration_size``
    training images; the study lives in the task's artefact directory so a resumed run keeps its trials.
    """

    name = "hass"
    needs = (StateField.MODEL, StateField.DATASET, StateField.TRAINED)
    produces = (MetricKey("hass", "throughput_images_per_s"), MetricKey("hass", "accuracy_drop"))

    device: str = param("zcu102", help="device name, see `accelflow dataflow --help`")
    max_accuracy_drop: float = param(1.0, low=0.0, high=100.0, help="bound in accuracy points")
    trials: int = param(20, low=1, high=100000)
    objective: str = param("throughput", choices=("throughput", "throughput_per_dsp"))
    validation_size: int = param(1000, low=10)
    holdout_size: int = param(1000, low=0, help="further validation images the chosen design (and each baseline) "
                                                "must also meet the bound on; 0: none")
    calibration_size: int = param(64, low=1)
    batch: int = param(256, low=1, high=1 << 20)
    lockstep: str = param("mean", choices=("mean", "expected_max", "sampled"),
                          help="sparse lock-step cost: fpgaConvNet's mean, or 'sampled' (within 2% of a cycle "
                               "simulation, seconds more per trial)")
    finetune_steps: int = param(0, low=0, high=1_000_000,
                                help="Adam steps of fine-tuning with the masks kept (0 = none): the chosen design, "
                                     "or with finetune_slack the designs found within the widened bound")
    finetune_slack: float = param(0.0, low=0.0, high=100.0,
                                  help="points the search may go beyond max_accuracy_drop, won back by fine-tuning")
    finetune_lr: float = param(2e-4, low=1e-7, high=1.0, help="Adam learning rate of the fine-tuning")
    finetune_distill: float = param(0.0, low=0.0, high=1.0,
                                    help="weight of distillation from the dense model in the fine-tuning loss")
    finetune_ramp: float = param(0.0, low=0.0, high=1.0,
                                 help="fraction of the fine-tuning steps over which the thresholds rise from 0 "
                                      "(gradual pruning; 0: at once)")
    baselines: str = param("none", choices=("none", "uniform", "slowest_layer", "all"),
                           help="sparse baselines run within the same bound, reported as metrics "
                                "(<baseline>_throughput_images_per_s, vs_<baseline>) and used as starting points")

    def __post_init__(self) -> None:
        if self.finetune_slack > 0 and self.finetune_steps <= 0:
            raise ValueError("hass: finetune_slack needs finetune_steps > 0 (the slack is won back by fine-tuning)")

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        from accelflow.dataflow import LockStep
        from accelflow.hass import (
            BASELINES,
            FineTune,
            SearchSettings,
            finetune_cache_dir,
            problem,
            run_search,
        )

        splits = state.splits()
        model = state.model_copy()
        built = problem(model, splits, self.device, name=state.model_name or "model",
                        validation_size=self.validation_size, calibration_size=self.calibration_size,
                        batch=self.batch, seed=ctx.seed, holdout_size=self.holdout_size,
                        lockstep=LockStep(self.lockstep))
        evaluator = built.evaluator
        settings = SearchSettings(max_accuracy_drop=self.max_accuracy_drop, trials=self.trials,
                                  objective=self.objective, seed=ctx.seed,
                                  storage=f"sqlite:///{ctx.path('hass_study.db')}", finetune_slack=self.finetune_slack)
        finetune = FineTune(splits.train, steps=self.finetune_steps, lr=self.finetune_lr, seed=ctx.seed,
                            progress=ctx.progress, distill=self.finetune_distill, ramp=self.finetune_ramp,
                            cache_dir=finetune_cache_dir()) if self.finetune_steps else None
        methods = {"none": (), "all": BASELINES}.get(self.baselines, (self.baselines,))
        result = run_search(evaluator, settings, progress=ctx.progress, finetune=finetune, baselines=methods,
                            holdout=built.holdout)
        compared: dict[str, float] = {}
        for m, b in result.extra.get("baselines", {}).items():  # vs_<m>: HASS over it on the search objective
            compared[f"{m}_throughput_images_per_s"] = b["throughput_images_per_s"]
            compared[f"vs_{m}"] = b["hass_ratio"]
        holdout = result.extra.get("accuracy_drop_estimates", {}).get("holdout")
        if holdout is not None:  # the unbiased reading of the drop, with its 95% interval (in hass.json too)
            compared |= {"holdout_accuracy_drop": holdout["points"], "holdout_accuracy_drop_high": holdout["ci95"][1]}
        path = _write_json(ctx.path("hass.json"), result.to_json())
        sparse_model = result.design_model(model)  # fine-tuned weights when the design was fine-tuned
        return state.evolve(model=sparse_model).with_artefact("hass_result", path).with_metrics(
            "hass",
            throughput_images_per_s=result.throughput_images_per_s,
            dense_throughput_images_per_s=result.dense_throughput_images_per_s,
            speedup_over_dense=result.throughput_images_per_s / result.dense_throughput_images_per_s,
            dense_dsp=result.dense_dsp,
            throughput_per_dsp=result.throughput_per_dsp,
            accuracy=result.accuracy,
            accuracy_drop=result.accuracy_drop,
            dsp=result.dsp, lut=result.lut, ff=result.ff, bram18=result.bram18,
            **compared,
        )
