"""Folding optimisation entry point: one function, the method chosen by an enum."""

from __future__ import annotations

import enum
import logging

from accelflow.dataflow._design import DataflowDesign, design_from_cost, network_model
from accelflow.dataflow._device import Device
from accelflow.dataflow._greedy import greedy
from accelflow.dataflow._network import DEFAULT_UTILISATION
from accelflow.dataflow._search import anneal, exhaustive
from accelflow.dataflow._sparse import LockStep
from accelflow.ir import Graph

__all__ = ["Method", "optimise_folding"]

log = logging.getLogger(__name__)


class Method(enum.StrEnum):
    GREEDY = "greedy"
    ANNEAL = "anneal"
    EXHAUSTIVE = "exhaustive"


def optimise_folding(
    graph: Graph,
    device: Device,
    method: Method = Method.GREEDY,
    *,
    batch: int = 256,
    data_bits: int = 16,
    weight_bits: int = 16,
    utilisation: float = DEFAULT_UTILISATION,
    seed: int = 0,
    iterations: int | None = None,
    use_sparsity: bool = True,
    refine: bool = True,
    lockstep: LockStep = LockStep.MEAN,
    node_budget: int = 2_000_000,
) -> DataflowDesign:
    """Fold every layer of ``graph`` to maximise throughput on ``device`` within ``utilisation`` of
    each resource. Conv nodes carrying a :class:`~accelflow.ir.ChannelSparsity` annotation with at least
    10% zero products are built sparse (``use_sparsity=False`` builds all dense). ``seed``/``iterations`` apply to annealing;
    ``lockstep`` picks the sparse lock-step cost (REFERENCE mean, or our expected maximum);
    ``refine=False`` skips greedy's re-target rounds (seconds faster on ImageNet-size networks, designs
    up to a third slower). ``node_budget`` bounds the exhaustive search (:class:`SearchBudgetError` past it).

    Example::

        >>> from accelflow.frontends import load_model
        >>> design = optimise_folding(load_model("zoo:lenet5"), load_device("zcu102"))
        >>> design.binding_resource, round(design.throughput_images_per_s)
    """
    model = network_model(graph, device, batch=batch, data_bits=data_bits, weight_bits=weight_bits,
                          utilisation=utilisation, use_sparsity=use_sparsity, lockstep=lockstep)  # fmt: skip
    method = Method(method)
    if method is Method.GREEDY:
        fold, cost = greedy(model, refine=refine)
    elif method is Method.ANNEAL:
        fold, cost = anneal(model, seed=seed, iterations=iterations)
    else:
        fold, cost = exhaustive(model, node_budget=node_budget)
    log.info("%s on %s (%s): %.1f images/s", graph.name, device.name, method.value, cost.throughput)
    return design_from_cost(graph.name, model, fold, cost)
