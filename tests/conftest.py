import os

from hypothesis import HealthCheck, settings

# Derandomized: the same examples on every run, so CI is reproducible; still hundreds of specs.
settings.register_profile(
    "derive", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derive"))
