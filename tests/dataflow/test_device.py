from pathlib import Path

import pytest

from accelflow.dataflow import device_names, load_device
from accelflow.errors import ConfigError

# REFERENCE section 3 device table: DSP, BRAM18, LUT, FF, URAM, MHz, Gb/s
TABLE = {
    "u250": (12288, 5376, 1_728_000, 3_456_000, 1280, 250, 614.4),
    "u200": (6840, 4320, 1_182_000, 2_364_000, 960, 250, 614.4),
    "vu9p": (6840, 4320, 1_182_240, 2_364_480, 960, 200, 320),
    "u50": (5952, 2688, 871_680, 1_743_360, 640, 250, 1608),
    "zcu102": (2520, 1824, 274_080, 548_160, 0, 200, 153.6),
    "zcu104": (1728, 624, 230_400, 460_800, 96, 200, 153.6),
    "zc706": (900, 1090, 218_600, 437_200, 0, 200, 102.4),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_device_table_matches_reference(name: str) -> None:
    d = load_device(name.upper())
    assert (d.dsp, d.bram18, d.lut, d.ff, d.uram, d.clock_mhz, d.offchip_gbps) == TABLE[name]


def test_names_and_unknown_device() -> None:
    assert set(TABLE) <= set(device_names())
    with pytest.raises(ConfigError, match="known devices: .*u250"):
        load_device("u9999")


def test_device_from_yaml_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("mine: {dsp: 10, bram18: 4, lut: 1000, ff: 2000, uram: 0, clock_mhz: 100, offchip_gbps: 8}\n")
    assert load_device(str(good)).dsp == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("bad: {dsp: -1, bram18: 4, lut: 1000, ff: 2000, uram: 0, clock_mhz: 100, offchip_gbps: 8}\n")
    with pytest.raises(ConfigError, match="dsp"):
        load_device(str(bad))
