"""Dataset registry: the paper's datasets as published, CDVAE CSVs, uploads, merging, attributes and caches."""

import json

import numpy as np
import pandas as pd
import pytest

from nesf.data import cdvae_csv, datasets, structure_io
from nesf.data.cdvae_csv import read_cdvae_csv
from nesf.data.datasets import (
    ATTRIBUTE_COLUMNS, available_datasets, dataset_from_crystals, default_data_dir, holdout, load_dataset,
    merge_datasets,
)
from nesf.core.errors import NesfError
from tests.helpers import small_cdvae_data_dir

PEROV_ROWS = 150  # rows of each perov_5 CSV copied into a small data directory


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def lim_l6(data_dir, cache_dir):
    return load_dataset("lim_l6", data_dir, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def ybco(data_dir, cache_dir):
    return load_dataset("YBCO13_fold0", data_dir, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def small_data_dir(data_dir, tmp_path_factory):
    """A data directory with the first PEROV_ROWS rows of perov_5's val.csv and test.csv (no train.csv)."""
    return small_cdvae_data_dir(data_dir, tmp_path_factory.mktemp("data"), PEROV_ROWS)


@pytest.fixture(scope="module")
def perov(small_data_dir):
    return load_dataset("perov_5", small_data_dir, cache_dir=small_data_dir / ".cache")


def test_lim_l6_as_published(lim_l6, paper_dir):
    assert {s: len(c) for s, c in lim_l6.splits.items()} == {"train": 5418, "val": 286, "test": 301}
    sidx_to_z = json.loads((paper_dir / "dataset_lim_l6_train" / "dataset_attr.json").read_text())["sidx_to_z"]
    assert lim_l6.species_vocab == sidx_to_z and len(lim_l6.species_vocab) == 80
    np.testing.assert_allclose(lim_l6.bbox_min, [-0.0077, -0.0055, 0.0], atol=1e-4)
    np.testing.assert_allclose(lim_l6.bbox_max, [11.65, 8.50, 5.97], atol=6e-3)
    train = np.concatenate([c.cart_coords for c in lim_l6.crystals("train")])
    np.testing.assert_array_equal(lim_l6.bbox_min, train.min(axis=0))
    assert lim_l6.description.startswith("LCS6Å")


def test_alias_and_unknown_names(data_dir, cache_dir, lim_l6):
    assert len(load_dataset("LCS6A", data_dir, cache_dir=cache_dir)) == len(lim_l6) == 6005
    with pytest.raises(NesfError, match="unknown dataset 'mp_20'"):
        load_dataset("mp_20", data_dir)


def test_find(lim_l6):
    hits = lim_l6.find("SrTiO3")
    assert ("train", "mp-5229") in [(s, c.id) for s, c in hits]
    # the formula's crystals first, then the others that hold Sr, Ti and O (the search of nesf.core.search)
    formulas = [c.formula for _, c in hits]
    exact = formulas.count("SrTiO3")
    assert exact and formulas[:exact] == ["SrTiO3"] * exact
    assert all({"Sr", "Ti", "O"} <= set(c.to_structure().composition.as_dict()) for _, c in hits[exact:])
    assert lim_l6.find("O", limit=3) == lim_l6.find("O")[:3]
    assert lim_l6.find("mp-5229")[0][1].id == "mp-5229"
    assert lim_l6.find("MP-5229")[0][1].id == "mp-5229"
    assert lim_l6.find("") == []
    assert len(lim_l6.all_crystals()) == 6005 and lim_l6.all_crystals()[0][0] == "train"
    assert lim_l6.crystals("val")[0].id
    with pytest.raises(NesfError, match="unknown split 'validation'"):
        lim_l6.crystals("validation")


def test_ybco_fold0(ybco):
    assert {s: len(c) for s, c in ybco.splits.items()} == {"train": 90, "val": 5, "test": 5}
    assert all(c.num_atoms == 13 for _, c in ybco.all_crystals())
    assert len(ybco.species_vocab) == 31


def test_attributes_computed_once_and_cached_on_disk(ybco, data_dir, cache_dir, monkeypatch):
    table = ybco.attributes()
    assert tuple(table.columns) == ATTRIBUTE_COLUMNS
    assert len(table) == 100 and (table["num_atoms"] == 13).all()
    assert set(ybco.attributes("test")["split"]) == {"test"} and len(ybco.attributes("test")) == 5
    assert list(cache_dir.glob("attributes-YBCO13_fold0-*.csv"))
    # a fresh load reads the table from disk: spglib is never called again
    monkeypatch.setattr(structure_io, "spacegroup", lambda *a, **k: pytest.fail("spacegroup recomputed"))
    again = load_dataset("YBCO13_fold0", data_dir, cache_dir=cache_dir).attributes()
    pd.testing.assert_frame_equal(again, table)


def test_perov5_from_cdvae_csv(perov):
    # the val file stands in for train, less a few percent held out (by id hash) as val
    sizes = {s: len(c) for s, c in perov.splits.items()}
    assert sizes["test"] == PEROV_ROWS and sizes["train"] + sizes["val"] == PEROV_ROWS
    assert 1 <= sizes["val"] <= PEROV_ROWS * 0.1
    assert not {c.id for c in perov.crystals("train")} & {c.id for c in perov.crystals("val")}
    assert "validation split is used as the training set, less the 4 % of its crystals" in perov.description
    assert perov.species_vocab == sorted(perov.species_vocab)
    assert all(c.num_atoms == 5 for _, c in perov.all_crystals())
    table = perov.attributes()
    row = table[table["id"] == "15422"].iloc[0]  # LaAuO3, a cubic perovskite
    assert (row["formula"], row["spacegroup_number"], row["spacegroup_symbol"], row["crystal_system"]) == (
        "LaAuO3", 221, "Pm-3m", "cubic")


def test_holdout_follows_ids_not_order(perov):
    crystals = perov.crystals("train") + perov.crystals("val")
    kept, held_out = holdout(crystals[::-1])
    assert {c.id for c in held_out} == {c.id for c in perov.crystals("val")}
    assert len(kept) + len(held_out) == len(crystals)
    assert holdout(crystals, percent=0)[1] == [] and holdout(crystals, percent=100)[0] == []


def test_cdvae_csv_cache(small_data_dir, perov, monkeypatch):
    # the perov fixture filled the cache: reading again never parses a CIF
    monkeypatch.setattr(cdvae_csv, "read_structures", lambda *a, **k: pytest.fail("CIF parsed again"))
    crystals = read_cdvae_csv(small_data_dir / "perov_5" / "val.csv", cache_dir=small_data_dir / ".cache")
    loaded = {c.id: c for c in perov.crystals("train") + perov.crystals("val")}
    assert sorted(c.id for c in crystals) == sorted(loaded)
    for a in crystals:
        b = loaded[a.id]
        np.testing.assert_array_equal(a.cart_coords, b.cart_coords)
        np.testing.assert_array_equal(a.species, b.species)


def test_bad_cdvae_csv(tmp_path, small_data_dir):
    path = tmp_path / "nocif.csv"
    path.write_text("material_id,formula\n1,NaCl\n")
    with pytest.raises(NesfError, match=r"nocif.csv: missing column\(s\) \['cif'\]"):
        read_cdvae_csv(path)
    frame = pd.read_csv(small_data_dir / "perov_5" / "val.csv", dtype={"material_id": str}).head(3)
    frame.loc[2, "cif"] = "data_broken\n_cell_length_a 1\nnot a cif at all"
    path = tmp_path / "broken.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(NesfError, match=r"broken.csv: row 2 \(material_id \w+\): .*not a readable cif"):
        read_cdvae_csv(path)


def test_available_datasets(data_dir, tmp_path):
    infos = {info.name: info for info in available_datasets(data_dir)}
    assert {"lim_l6", "ICSG3D", "perov_5", "carbon_24"} <= set(infos)
    assert {f"YBCO13_fold{k}" for k in range(20)} <= set(infos)
    assert infos["lim_l6"].paper_name == "LCS6Å" and infos["lim_l6"].splits == ("train", "val", "test")
    assert infos["lim_l6"].files_missing == ()
    icsg = infos["ICSG3D"]
    assert icsg.splits == ("train", "val", "test")
    assert "nesf_paper/dataset_ICSG3D_train/dataset.pkl" in icsg.files_missing
    assert "validation split is used as the training set" in icsg.description
    assert infos["perov_5"].files_missing == ("perov_5/train.csv",)
    assert available_datasets(tmp_path) == []


def test_icsg3d_uses_val_as_train(data_dir, cache_dir):
    icsg = load_dataset("ICSG3D", data_dir, cache_dir=cache_dir)
    assert {s: len(c) for s, c in icsg.splits.items()} == {"train": 327, "val": 15, "test": 360}  # 342 in val
    assert len(icsg.species_vocab) == 84


def test_missing_dataset_message(tmp_path):
    with pytest.raises(NesfError) as info:
        load_dataset("lim_l6", tmp_path)
    message = str(info.value)
    assert "'lim_l6'" in message and str(tmp_path) in message and "python -m nesf download lim_l6" in message


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NESF_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("NESF_DATA_DIR")
    assert default_data_dir() == datasets.Path("data")


def test_default_cache_dir(monkeypatch, tmp_path, paper_dir):
    monkeypatch.delenv("NESF_CACHE_DIR", raising=False)
    assert datasets.default_cache_dir(tmp_path) == tmp_path / ".cache"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        expected = tmp_path / "home" / ".cache" / "nesf"
        if not datasets.os.access(readonly, datasets.os.W_OK):  # root ignores permissions
            assert datasets.default_cache_dir(readonly) == expected
    finally:
        readonly.chmod(0o755)
    monkeypatch.setenv("NESF_CACHE_DIR", str(tmp_path / "c"))
    assert datasets.default_cache_dir(paper_dir) == tmp_path / "c"


def test_dataset_from_crystals(ybco):
    crystals = [c for _, c in ybco.all_crystals()]
    upload = dataset_from_crystals("mine", crystals, seed=3)
    assert {s: len(c) for s, c in upload.splits.items()} == {"train": 90, "val": 5, "test": 5}
    assert upload.species_vocab == sorted({int(z) for c in crystals for z in c.species})
    again = dataset_from_crystals("mine", crystals, seed=3)
    assert [c.id for c in again.crystals("val")] == [c.id for c in upload.crystals("val")]
    one = dataset_from_crystals("one", crystals[:1])
    assert {s: len(c) for s, c in one.splits.items()} == {"train": 1}
    np.testing.assert_array_equal(one.bbox_min, crystals[0].cart_coords.min(axis=0))
    with pytest.raises(NesfError, match="no crystals"):
        dataset_from_crystals("none", [])


def test_merge_datasets(ybco, perov):
    merged = merge_datasets([ybco, perov], "both")
    assert merged.species_vocab[: len(ybco.species_vocab)] == ybco.species_vocab
    assert set(merged.species_vocab) == set(ybco.species_vocab) | set(perov.species_vocab)
    assert len(merged.species_vocab) == len(set(merged.species_vocab))
    assert {s: len(c) for s, c in merged.splits.items()} == {"train": 90 + 144, "val": 5 + 6,
                                                                "test": 5 + PEROV_ROWS}
    np.testing.assert_array_equal(merged.bbox_min, np.minimum(ybco.bbox_min, perov.bbox_min))
    np.testing.assert_array_equal(merged.bbox_max, np.maximum(ybco.bbox_max, perov.bbox_max))


def test_perov5_val_csv_rows_parse(data_dir, tmp_path):
    """CDVAE's perov_5 val.csv: all 3,787 rows are there, and every 10th (379, ~6 s; the whole file takes ~60 s on
    one core and parses the same way) reads as a 5-atom conventional cell."""
    frame = pd.read_csv(data_dir / "perov_5" / "val.csv", dtype={"material_id": str}, keep_default_na=False)
    assert len(frame) == 3787
    sample = tmp_path / "val_every_10th.csv"
    frame.iloc[::10].to_csv(sample, index=False)
    crystals = read_cdvae_csv(sample)
    assert len(crystals) == 379
    assert [c.id for c in crystals] == list(frame["material_id"].iloc[::10])
    assert all(c.num_atoms == 5 for c in crystals)
