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
