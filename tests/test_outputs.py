"""outputs/ is current: every committed text file equals a fresh build, and each was checked."""

from pathlib import Path

import pytest

from derive.build import EXERCISE_PRESETS, build_files
from derive.spec import preset_names

OUTPUTS = Path(__file__).resolve().parents[1] / "outputs"


@pytest.mark.parametrize("name", preset_names())
def test_committed_outputs_equal_a_fresh_build(name):
    files = build_files(name)
    for filename, content in files.items():
        path = OUTPUTS / name / filename
        assert path.exists(), f"{path} is missing: rebuild outputs/ (see README)"
        assert path.read_text(encoding="utf-8") == content, f"{path} is stale: rebuild outputs/ (see README)"
    assert (OUTPUTS / name / f"{name}.pdf").exists()


def test_exercise_pairs_exist():
    assert len(EXERCISE_PRESETS) >= 2
    for name in EXERCISE_PRESETS:
        assert (OUTPUTS / name / f"{name}-exercise-solution.pdf").exists()


def test_committed_modules_compute_verified_gradients():
    from derive.spec import load_preset
    from derive.verify import check_module, load_module

    for name in preset_names():
        source = (OUTPUTS / name / f"{name.replace('-', '_')}.py").read_text()
        report = check_module(load_module(source, name.replace("-", "_")), load_preset(name), points=1)
        assert report.ok, report.table()
