import os

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests import helpers

# Derandomized: the same examples on every run, so CI is reproducible.
settings.register_profile(
    "derive", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
# For a first look at what fails: no shrinking (a failure is reported as drawn).
settings.register_profile("triage", parent=settings.get_profile("derive"),
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derive"))


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true",
                     help="the full run: every sweep at its full number of examples, and the tests marked slow "
                          "(TeX compiles, interrupted commands, every command on random specs)")


def pytest_configure(config):
    # The default run deselects `slow` (pyproject's addopts); --slow selects everything and widens the sweeps.
    if config.getoption("--slow"):
        config.option.markexpr = ""
        helpers.SLOW = True


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # A test that compiles LaTeX (it takes the `tex` fixture) belongs to the full run.
    for item in items:
        if "tex" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
