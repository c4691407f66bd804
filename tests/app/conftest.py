"""Fixtures of the app tests: the checkpoint they run against, a private user folder, a tiny CIF, and a
`streamlit run` server of the app for the browser tests."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app_helpers import FAKE_TRAINER, need_browser, start_streamlit  # noqa: E402


def shipped_checkpoint_dir() -> Path | None:
    """checkpoints/ when it holds a checkpoint with its atlas; NESF_TEST_CHECKPOINT_DIR overrides it."""
    override = os.environ.get("NESF_TEST_CHECKPOINT_DIR")
    directory = Path(override) if override else REPO_ROOT / "checkpoints"
    for path in sorted(directory.glob("*.pt")):
        if not path.name.endswith(".atlas.pt") and path.with_name(path.stem + ".atlas.pt").is_file():
            return directory
    return None


@pytest.fixture(scope="session")
def app_env(tmp_path_factory):
    """Environment of the app under test (one for the session, since app.settings reads it on import): the shipped
    checkpoints, a private user folder, a fake trainer that speaks the progress protocol."""
    tmp_path = tmp_path_factory.mktemp("app")
    directory = shipped_checkpoint_dir()
    if directory is None:
        pytest.skip("no checkpoints/*.pt with its .atlas.pt yet (the shipped default checkpoint is not committed)")
    env = {
        "NESF_CHECKPOINT_DIR": str(directory),
        "NESF_USER_DIR": str(tmp_path / "user"),
        "NESF_TRAIN_COMMAND": f"{sys.executable} {FAKE_TRAINER} --epoch-s 0.3",
    }
    data = REPO_ROOT.parent / "shared" / "data"
    if os.environ.get("NESF_DATA_DIR"):
        env["NESF_DATA_DIR"] = os.environ["NESF_DATA_DIR"]
    elif data.is_dir():
        env["NESF_DATA_DIR"] = str(data)
    else:
        env["NESF_DATA_DIR"] = str(tmp_path / "no-data")
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]  # re-read app.settings under this environment
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@dataclass
class StreamlitServer:
    url: str                  # http://127.0.0.1:<port>
    proc: subprocess.Popen    # the server process (its pid for memory measurements)
    log: Path                 # its stdout and stderr


@pytest.fixture(scope="module")
def streamlit_server(app_env, tmp_path_factory):
    """`streamlit run app/main.py` on 127.0.0.1 (one per test module), on the shipped checkpoint."""
    need_browser()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    try:
        proc, url = start_streamlit(app_env, log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield StreamlitServer(url, proc, log)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
