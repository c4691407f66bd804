"""README's commands and library example run as written: the example with the installed package (README's install
commands, `pip install -e`), and the test command is the one CI runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_library_example_runs_as_written(tmp_path):
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Using the library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "checkpoints").symlink_to(REPO_ROOT / "checkpoints")  # the root's checkpoints, files written here
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # the installed package alone
    env["OMP_NUM_THREADS"] = "2"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    written = (tmp_path / "NaCl-reconstructed.cif").read_text()
    assert "_cell_length_a" in written and "Na" in written


def _commands(readme: str, heading: str) -> list[str]:
    section = readme.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_the_two_commands_install_from_pyproject_in_a_venv_and_ci_runs_the_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    app, tests = _commands(readme, "## Two commands")
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert app == venv + 'pip install -e ".[app]" && streamlit run app/main.py'
    assert tests == venv + 'pip install -e ".[app,test]" && python -m pytest -q --timeout 600'
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert tests.replace("pip install -e", "pip install -q -e") in ci.splitlines()
    # one list of dependencies: the requirements files point at pyproject's extras
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert {"streamlit", "plotly", "py3Dmol", "chemiscope"} <= {re.split(r"[<>=]", d)[0]
                                                               for d in project["optional-dependencies"]["app"]}
    assert {"pytest", "playwright"} <= {re.split(r"[<>=]", d)[0] for d in project["optional-dependencies"]["test"]}
    for name, extras in (("requirements.txt", "-e .[app]"), ("requirements-test.txt", "-e .[app,test]")):
        lines = [line for line in (REPO_ROOT / name).read_text().splitlines() if line and not line.startswith("#")]
        assert lines == [extras], name


def test_the_library_is_importable_as_installed():
    """README's library example runs outside the repository's folder too: `pip install -e` put `nesf` on the path."""
    run = subprocess.run([sys.executable, "-c", "import nesf.api, nesf.cli; print(nesf.api.__file__)"], cwd="/",
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert Path(run.stdout.strip()).is_relative_to(REPO_ROOT)
