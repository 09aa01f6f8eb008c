"""FPGA device descriptions for the dataflow model, read from ``devices/devices.yaml``.

A device is data: the YAML is validated with pydantic (every field required, positive, units in the
field names) and built into a frozen :class:`Device`. Numbers come from the device table of
REFERENCE section 3.

Example::

    >>> from accelflow.dataflow import load_device
    >>> load_device("u250").dsp
    12288
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accelflow.errors import ConfigError

__all__ = ["Device", "load_device", "device_names", "DEVICES_FILE"]

#: The bundled device table.
DEVICES_FILE = Path(__file__).with_name("devices") / "devices.yaml"


class _DeviceSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    dsp: int = Field(gt=0)
    bram18: int = Field(ge=0)
    lut: int = Field(gt=0)
    ff: int = Field(gt=0)
    uram: int = Field(ge=0)
    clock_mhz: float = Field(gt=0)
    offchip_gbps: float = Field(gt=0)


@dataclass(frozen=True)
class Device:
    """Resources of one FPGA: DSP slices, 18 Kb block RAMs, LUTs, flip-flops, 288 Kb UltraRAMs, the
    design clock (MHz) and the off-chip memory bandwidth in gigabits per second."""

    name: str
    dsp: int
    bram18: int
    lut: int
    ff: int
    uram: int
    clock_mhz: float
    offchip_gbps: float
    description: str = ""

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6


@cache
def _table(path: Path) -> dict[str, Device]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read device table: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of device name -> fields")
    devices: dict[str, Device] = {}
    for name, fields in raw.items():
        try:
            spec = _DeviceSchema.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: device {name!r}, field {where!r}: {first['msg']}") from exc
        key = str(name).lower()
        if key in devices:
            raise ConfigError(f"{path}: duplicate device {name!r}")
        devices[key] = Device(name=key, **spec.model_dump())
    return devices


def device_names(path: Path = DEVICES_FILE) -> tuple[str, ...]:
    """Names of the devices in the table, sorted."""
    return tuple(sorted(_table(path)))


def load_device(name: str, path: Path = DEVICES_FILE) -> Device:
    """The device called ``name`` (case-insensitive); a ``.yaml`` path loads a one-device file instead."""
    if name.endswith((".yaml", ".yml")):
        table = _table(Path(name))
        if len(table) != 1:
            raise ConfigError(f"{name}: expected exactly one device, found {len(table)}")
        return next(iter(table.values()))
    table = _table(path)
    try:
        return table[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown device {name!r}; known devices: {', '.join(sorted(table))}") from None
