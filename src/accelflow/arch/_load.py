"""Loading architecture descriptions: YAML files/strings, shipped templates, ``name:k=v`` specs."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from accelflow.arch._model import ArchError, Architecture, build
from accelflow.errors import ConfigError

__all__ = ["load_architecture", "template", "template_names", "template_parameters", "parse_arch_spec"]

#: Shipped templates (explicit table, no directory scanning): name -> YAML file in ``templates/``.
TEMPLATES: dict[str, str] = {
    "systolic": "systolic.yaml",
    "gemmini": "gemmini.yaml",
    "ultratrail": "ultratrail.yaml",
    "plasticine": "plasticine.yaml",
}

_DATAFLOWS = ("ws", "os", "is")


def template_names() -> tuple[str, ...]:
    return tuple(TEMPLATES)


def _read_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ArchError(source, "architecture", "(document)", f"invalid YAML: {exc}") from None


def _template_data(name: str) -> dict[str, Any]:
    if name not in TEMPLATES:
        raise ConfigError(f"unknown architecture template {name!r}; known: {', '.join(TEMPLATES)}")
    text = resources.files("accelflow.arch").joinpath("templates", TEMPLATES[name]).read_text()
    data = _read_yaml(text, f"template {name}")
    assert isinstance(data, dict)
    return data


def template_parameters(name: str) -> dict[str, int | float | str | None]:
    """Parameters of a shipped template with their default values."""
    return dict(_template_data(name)["parameters"])


def template(name: str, **options: int | float | str | None) -> Architecture:
    """Build a shipped template with parameters overridden by ``options``.

    >>> template("systolic", rows=16, cols=16, dataflow="os").param("rows")
    16
    """
    data = copy.deepcopy(_template_data(name))
    params = data["parameters"]
    for key, value in options.items():
        if key not in params:
            raise ConfigError(f"template {name!r} has no parameter {key!r}; parameters: {', '.join(params)}")
        if isinstance(params[key], int) and not isinstance(params[key], bool) and not isinstance(value, int):
            raise ConfigError(f"template {name!r}: parameter {key!r} must be an integer, got {value!r}")
        if isinstance(params[key], float) and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise ConfigError(f"template {name!r}: parameter {key!r} must be a number, got {value!r}")
        params[key] = value
    if name == "systolic":
        if params["dataflow"] not in _DATAFLOWS:
            raise ConfigError(f"systolic: dataflow must be one of {_DATAFLOWS}, got {params['dataflow']!r}")
        if params["bandwidth_words_per_cycle"] is None:  # unlimited bandwidth
            data["memory_interfaces"][0]["port_width_bits"] = None
            data["roofline"]["dram_bytes_per_cycle"] = None
        else:
            value = params["bandwidth_words_per_cycle"]
            try:
                params["bandwidth_words_per_cycle"] = int(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ConfigError(f"systolic: bandwidth_words_per_cycle must be a positive integer or 'unlimited', "
                                  f"got {value!r}") from None
            if params["bandwidth_words_per_cycle"] <= 0:  # type: ignore[operator]
                raise ConfigError(f"systolic: bandwidth_words_per_cycle must be positive, got {value!r}")
    return build(data, source=f"template {name} ({TEMPLATES[name]})")


def load_architecture(path_or_text: str | Path) -> Architecture:
    """Load a YAML architecture description from a file path or from YAML text."""
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text
                                          and path_or_text.endswith((".yaml", ".yml"))):  # fmt: skip
        path = Path(path_or_text)
        if not path.is_file():
            raise ConfigError(f"architecture file {str(path)!r} does not exist")
        return build(_read_yaml(path.read_text(), str(path)), source=str(path))
    return build(_read_yaml(str(path_or_text), "<string>"), source="<string>")


def parse_option_value(text: str) -> int | float | str | None:
    """A template option from the command line: an integer, a decimal number (``0.25``), ``None`` for
    none/null/unlimited, or text."""
    text = text.strip()
    if text.lower() in ("none", "null", "unlimited"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text) if any(c.isdigit() for c in text) and text.lower() not in ("nan", "inf") else text
    except ValueError:
        return text


def parse_arch_spec(spec: str) -> Architecture:
    """``"systolic:rows=16,cols=16,dataflow=ws"``, ``"gemmini"`` or a path to a YAML file."""
    if spec.endswith((".yaml", ".yml")):
        return load_architecture(spec)
    name, _, rest = spec.partition(":")
    options: dict[str, int | float | str | None] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"bad architecture option {item!r} in {spec!r}: expected key=value")
        options[key.strip()] = parse_option_value(value)
    return template(name.strip(), **options)
