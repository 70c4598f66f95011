from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    blocks = text.split("```sh\n")[1:]
    return [b.split("```")[0].strip() for b in blocks]


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    commands = _commands((ROOT / "README.md").read_text())
    main_job, tests = commands[0], commands[1]
    assert main_job.startswith("python3 -m pip install .") and "derive show" in main_job
    assert "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()
