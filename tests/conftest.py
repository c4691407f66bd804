"""Shared fixtures. Tests that need the paper's data find it through `data_dir`: NESF_DATA_DIR, else ../shared/data
beside the checkout. Outside CI a missing data directory skips those tests; in CI (CI=1) it fails them."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_data_dir() -> Path | None:
    for candidate in (os.environ.get("NESF_DATA_DIR"), REPO_ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "nesf_paper").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = _find_data_dir()
    if found is None:
        message = "data directory with nesf_paper/ not found (set NESF_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def paper_dir(data_dir) -> Path:
    return data_dir / "nesf_paper"
