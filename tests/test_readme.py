"""README's library example runs as written (from the repository's root, as README says)."""

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
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    written = (tmp_path / "NaCl-reconstructed.cif").read_text()
    assert "_cell_length_a" in written and "Na" in written
