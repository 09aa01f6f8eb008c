"""`accelflow hass` rejects bad input with one line and exit code 2 (the full run is in the benchmark)."""

from __future__ import annotations

import pytest

from accelflow.cli.main import main


@pytest.mark.parametrize("argv", [
    ["hass", "zoo:nope", "--trials", "2"],
    ["hass", "net.onnx"],
    ["hass", "zoo:lenet5", "--trials", "0"],
    ["hass", "zoo:lenet5", "--max-accuracy-drop", "-1"],
    ["hass", "zoo:lenet5", "--refine-trials", "-1"],
])
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("accelflow hass: error:") and "\n" not in err
