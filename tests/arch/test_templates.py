"""Template options given on the command line are validated with clear errors."""

import pytest


@pytest.mark.parametrize("spec, message", [
    ("systolic:rows=abc", "'rows' must be an integer"),
    ("systolic:bandwidth_words_per_cycle=nan", "bandwidth_words_per_cycle must be a positive integer"),
    ("systolic:bandwidth_words_per_cycle=0", "must be positive"),
])
def test_bad_template_options_are_config_errors(spec, message):
    from accelflow.arch import parse_arch_spec
    from accelflow.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_arch_spec(spec)


def test_every_template_has_a_clock_and_a_vector_datapath():
    from accelflow.arch import parse_arch_spec, template

    clocks = {"systolic": 1000.0, "gemmini": 1000.0, "ultratrail": 0.25, "plasticine": 1000.0}
    vector_op = {"systolic": "vop", "gemmini": "vop", "ultratrail": "vec", "plasticine": "pcu_vec"}
    for name, mhz in clocks.items():
        arch = template(name)
        assert arch.clock_mhz == mhz and vector_op[name] in arch.operations and arch.peak_vector_ops_per_cycle >= 1
    assert parse_arch_spec("gemmini:clock_mhz=500").clock_mhz == 500.0
    assert parse_arch_spec("ultratrail:clock_mhz=0.5").clock_mhz == 0.5
    assert parse_arch_spec("systolic:vector_lanes=8").peak_vector_ops_per_cycle == 8


@pytest.mark.parametrize("spec, message", [
    ("gemmini:clock_mhz=fast", "'clock_mhz' must be a number"),
    ("gemmini:clock_mhz=0", "clock_mhz"),
])
def test_bad_clocks_are_config_errors(spec, message):
    from accelflow.arch import parse_arch_spec
    from accelflow.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_arch_spec(spec)


def test_a_description_without_a_clock_assumes_1_ghz():
    from accelflow.arch import load_architecture

    text = """
name: tiny
mapper: systolic
execute_stages: [{name: ex, functional_units: [alu]}]
functional_units: [{name: alu, operations: {add: {latency_cycles: 1}}}]
edges: [{src: fetch, dst: ex}]
roofline: {peak_macs_per_cycle: 4}
"""
    arch = load_architecture(text)
    assert arch.clock_mhz == 1000.0 and arch.peak_vector_ops_per_cycle == 4
    assert load_architecture(text + "clock_mhz: 250\n").clock_mhz == 250.0
