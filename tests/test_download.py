"""Downloads against a local HTTP server laid out like raw.githubusercontent.com: checksums, skips, tampering."""

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from nesf.core.errors import NesfError
from nesf.data import download as dl
from nesf.data.datasets import load_dataset
from nesf.data.download import DOWNLOADS, RAW_BASE_URL, canonical_name, download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def mirror(tmp_path, data_dir):
    """(base_url, served root): lim_l6's test split and YBCO13_fold0 copied to their upstream URL paths."""
    root = tmp_path / "served"
    for name in ("lim_l6", "YBCO13_fold0"):
        for remote in DOWNLOADS[name]:
            if name == "lim_l6" and "_test/" not in remote.path:
                continue
            served = root / remote.url[len(RAW_BASE_URL) + 1:]
            served.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data_dir / remote.path, served)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_table_pins_every_shared_file(data_dir):
    for files in DOWNLOADS.values():
        for remote in files:
            assert remote.url.startswith("https://raw.githubusercontent.com/")
            local = data_dir / remote.path
            if remote.sha256 is None:
                assert not local.exists(), remote.path  # only files missing here lack a checksum
            else:
                assert hashlib.sha256(local.read_bytes()).hexdigest() == remote.sha256, remote.path
    unpinned = sorted(r.path for files in DOWNLOADS.values() for r in files if r.sha256 is None)
    assert unpinned == ["carbon_24/train.csv", "nesf_paper/dataset_ICSG3D_train/dataset.pkl", "perov_5/train.csv"]
    assert "/txie-93/cdvae/f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea/data/perov_5/val.csv" in DOWNLOADS["perov_5"][1].url
    assert canonical_name("lcs6a") == "lim_l6" and canonical_name("ybco13_FOLD3") == "YBCO13_fold3"


def test_download_verify_and_skip(mirror, tmp_path, monkeypatch):
    base_url, _ = mirror
    target = tmp_path / "data"
    events = []
    paths = download(["lim_l6"], target, splits=["test"], base_url=base_url)
    paths += download("YBCO13_fold0", target, base_url=base_url, progress=lambda *e: events.append(e))
    assert len(paths) == 2 + 6 and all(p.is_file() for p in paths)
    assert (target / "nesf_paper/dataset_lim_l6_test/dataset.pkl") in paths
    fraction, message = events[-1]  # (fraction, message): each file ends at 1.0 with its path and size
    assert fraction == 1.0 and message.startswith("nesf_paper/dataset_YBCO13") and message.endswith(" MB")
    assert all(0.0 <= f <= 1.0 for f, _ in events)
    assert not list(target.rglob("*.part"))
    assert len(load_dataset("YBCO13_fold0", target, cache_dir=tmp_path / "cache")) == 100

    # everything is present with the right checksum: nothing is fetched again
    monkeypatch.setattr(dl, "_fetch", lambda *a, **k: pytest.fail("fetched a file already present"))
    assert download(["LCS6A"], target, splits=["test"], base_url=base_url) == paths[:2]
    assert download(["YBCO13_fold0"], target, base_url=base_url) == paths[2:]


def test_tampered_file_is_refused_and_not_kept(mirror, tmp_path):
    base_url, root = mirror
    served = root / "omron-sinicx/neural-structure-field/main/data/dataset_paper/dataset_YBCO13_fold0_val/dataset.pkl"
    served.write_bytes(served.read_bytes()[:-10] + b"0123456789")
    target = tmp_path / "data"
    with pytest.raises(NesfError, match=r"dataset_YBCO13_fold0_val/dataset.pkl: checksum mismatch"):
        download(["YBCO13_fold0"], target, splits=["val"], base_url=base_url)
    folder = target / "nesf_paper" / "dataset_YBCO13_fold0_val"
    assert not (folder / "dataset.pkl").exists()
    assert [p.name for p in folder.iterdir()] in ([], ["dataset_attr.json"])


def test_http_errors_and_bad_arguments(mirror, tmp_path):
    base_url, _ = mirror
    with pytest.raises(NesfError, match=r"perov_5/val.csv: download failed, HTTP 404"):
        download(["perov_5"], tmp_path, splits=["val"], base_url=base_url)
    assert not list(Path(tmp_path).rglob("*.csv")) and not list(Path(tmp_path).rglob("*.part"))
    with pytest.raises(NesfError, match="base_url must be an http"):
        download(["lim_l6"], tmp_path, base_url="file:///etc")
    with pytest.raises(NesfError, match="unknown split"):
        download(["lim_l6"], tmp_path, splits=["dev"])
    with pytest.raises(NesfError, match="unknown dataset 'nope'"):
        download(["nope"], tmp_path)
    with pytest.raises(NesfError, match="download failed"):
        download(["perov_5"], tmp_path, splits=["val"], base_url="http://127.0.0.1:9")
