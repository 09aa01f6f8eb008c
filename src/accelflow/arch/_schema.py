"""Pydantic schema of the architecture description language (the YAML file format).

The schema only checks the shape of the data; :mod:`accelflow.arch._model` then builds frozen, typed
objects and checks cross references (edges, operation dispatch). Numeric fields may be integers or
expressions over the ``parameters`` section (e.g. ``latency_cycles: "rows + cols - 2"``); latencies of
functional-unit operations may also use the instruction's fields (e.g. ``n``, the number of streamed
rows, or ``bytes``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EdgeKind",
    "IntOrExpr",
    "FetchSpec",
    "StageSpec",
    "ExecuteStageSpec",
    "OperationSpec",
    "FunctionalUnitSpec",
    "MemoryAccessUnitSpec",
    "RegisterFileSpec",
    "StorageSpec",
    "MemoryInterfaceSpec",
    "EdgeSpec",
    "RooflineSpec",
    "ArchitectureSpec",
]

IntOrExpr = int | str


class EdgeKind(StrEnum):
    INSTRUCTION = "instruction"  # instruction flow: fetch -> stages -> execute stage -> unit
    DATA = "data"  # a unit reads/writes a register file, storage or memory interface


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchSpec(_Strict):
    """Instruction fetch/issue: ``issue_width`` instructions in flight, in program order."""

    name: str = "fetch"
    issue_width: int = Field(1, ge=1)
    latency_cycles: IntOrExpr = 1


class StageSpec(_Strict):
    """A pipeline stage or queue: holds at most ``capacity`` instructions; an instruction leaves only
    when the next object accepts it (back-pressure)."""

    name: str
    capacity: IntOrExpr = 1
    latency_cycles: IntOrExpr = 0


class ExecuteStageSpec(StageSpec):
    """A stage that dispatches each instruction to the attached unit supporting its operation."""

    functional_units: list[str]


class OperationSpec(_Strict):
    """``latency_cycles`` until the result is ready; the unit accepts its next instruction after
    ``occupancy_cycles`` (initiation interval; default = latency, i.e. not pipelined)."""

    latency_cycles: IntOrExpr = 1
    occupancy_cycles: IntOrExpr | None = None
    description: str = ""


class FunctionalUnitSpec(_Strict):
    """Executes ``operations``; ``capacity`` instructions may be in flight at once (1 = not pipelined)."""

    name: str
    operations: dict[str, OperationSpec]
    capacity: IntOrExpr = 1
    macs_per_cycle: IntOrExpr = 0  # peak work, used by the roofline baseline only


class MemoryAccessUnitSpec(FunctionalUnitSpec):
    """A functional unit that moves ``bytes`` (an instruction field) through ``memory_interface``."""

    memory_interface: str


class RegisterFileSpec(_Strict):
    name: str
    registers: IntOrExpr = 1
    width_bits: IntOrExpr = 32


class StorageSpec(_Strict):
    """On-chip storage (scratchpad, accumulator, SRAM buffer) whose addresses carry dependencies."""

    name: str
    size_kb: IntOrExpr | float = 0
    banks: IntOrExpr = 1


class MemoryInterfaceSpec(_Strict):
    """Port to a memory: latency, width (``null`` = unlimited bandwidth), ports and requests in flight."""

    name: str
    read_latency_cycles: IntOrExpr = 0
    write_latency_cycles: IntOrExpr = 0
    port_width_bits: IntOrExpr | None = None
    ports: IntOrExpr = 1
    max_requests_in_flight: IntOrExpr = 1
    banks: IntOrExpr = 1


class EdgeSpec(_Strict):
    src: str
    dst: str
    kind: EdgeKind = EdgeKind.INSTRUCTION


class RooflineSpec(_Strict):
    """Peak numbers for the roofline baseline (``dram_bytes_per_cycle: null`` = unlimited).
    ``peak_vector_ops_per_cycle``: the vector unit's peak (element-wise, softmax, normalisation, pooling),
    default ``peak_macs_per_cycle``."""

    peak_macs_per_cycle: IntOrExpr
    dram_bytes_per_cycle: IntOrExpr | None = None
    peak_vector_ops_per_cycle: IntOrExpr | None = None


class ArchitectureSpec(_Strict):
    """One accelerator. ``mapper`` names the layer-to-loop-kernel mapper used for it. ``clock_mhz`` (for
    seconds from cycles): a number, or the name of a numeric parameter (so a template option can change
    it), or an integer expression over the parameters; 1000 (1 GHz) when not given."""

    name: str
    mapper: str
    description: str = ""
    parameters: dict[str, int | float | str | None] = Field(default_factory=dict)
    clock_mhz: float | str = 1000.0
    word_bits: int = 8
    fetch: FetchSpec = FetchSpec()
    pipeline_stages: list[StageSpec] = Field(default_factory=list)
    execute_stages: list[ExecuteStageSpec]
    functional_units: list[FunctionalUnitSpec] = Field(default_factory=list)
    memory_access_units: list[MemoryAccessUnitSpec] = Field(default_factory=list)
    register_files: list[RegisterFileSpec] = Field(default_factory=list)
    storages: list[StorageSpec] = Field(default_factory=list)
    memory_interfaces: list[MemoryInterfaceSpec] = Field(default_factory=list)
    edges: list[EdgeSpec]
    roofline: RooflineSpec
