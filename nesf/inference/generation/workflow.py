"""One generation session over a model and its atlas, as the CLI and the app run it: fit the density once, then
sample anywhere (whole space, near a crystal, within a region of the map), decode, and judge each sample
(validity, uniqueness, novelty against the training crystals, nearest dataset crystals)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.inference.generation.density import DEFAULT_SPREAD, LatentDensity
from nesf.inference.generation.sample import ID_PREFIX, AtomCountSupport, Where, atlas_density, generate
from nesf.inference.generation.validity import chemist_caution
from nesf.inference.generation.scores import CrystalScores, score_crystals

NEAREST_COUNT = 3
DECODE_SHARE = 0.9  # of a run's progress bar (LCS6A, 100 samples, 2 CPU cores: decoding 18 s of 19.5 s)


@dataclass(frozen=True)
class GeneratedSet:
    """Samples of one run: latents (N, L), decoded crystals (canonical frame), their scores, and for each its
    nearest dataset crystals [(id, latent distance), ...]."""
    latents: np.ndarray
    crystals: list[Crystal]
    scores: CrystalScores
    nearest: list[list[tuple[str, float]]]
    where: str
    density: str
    seed: int
    replaced: int = 0  # draws replaced because their atom count is none the training crystals have (`support`)

    def table_rows(self) -> list[dict]:
        rows = []
        for i, crystal in enumerate(self.crystals):
            rows.append({"id": crystal.id, "formula": crystal.formula or "(empty)", "num_atoms": crystal.num_atoms,
                         "volume_angstrom3": round(crystal.volume_angstrom3, 3),
                         "structure_valid": bool(self.scores.structure_valid[i]),
                         "composition_valid": bool(self.scores.composition_valid[i]),
                         "valid": bool(self.scores.valid[i]), "unique": bool(self.scores.unique[i]),
                         "novel": bool(self.scores.novel[i]),
                         "nearest_dataset_crystal": self.nearest[i][0][0] if self.nearest[i] else "",
                         "nearest_latent_distance": round(self.nearest[i][0][1], 4) if self.nearest[i] else None,
                         "caution": chemist_caution(crystal)})
        return rows

    def summary_csv(self) -> str:
        rows = self.table_rows()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()


class GenerationSession:
    """A model, its atlas (training latents and crystals) and a fitted density."""

    def __init__(self, autoencoder, atlas, density: LatentDensity):
        self.autoencoder = autoencoder
        self.atlas = atlas
        self.density = density
        train = (atlas.table["split"] == "train").to_numpy()
        self.training_crystals = [c for c, keep in zip(atlas.crystals, train) if keep]

    @classmethod
    def open(cls, autoencoder, method: str = "gmm", seed: int = 0) -> "GenerationSession":
        from nesf.checkpoint import atlas_path_for
        from nesf.inference.atlas import load_atlas

        path = atlas_path_for(autoencoder.path) if autoencoder.path else None
        if path is None or not path.is_file():
            raise NesfError(f"{autoencoder.info.name}: generation needs the atlas beside the checkpoint ({path}); "
                            f"build it with `nesf atlas`")
        atlas = load_atlas(path, autoencoder)
        return cls(autoencoder, atlas, atlas_density(atlas, method, seed))

    def index_of(self, crystal_id: str) -> int:
        """The atlas row of a crystal id, else of the first crystal with this formula."""
        table = self.atlas.table
        for column in ("id", "formula"):
            matches = np.flatnonzero(table[column].astype(str).to_numpy() == str(crystal_id))
            if len(matches):
                return int(matches[0])
        raise NesfError(f"no crystal with id or formula {crystal_id!r} in the atlas of {self.atlas.dataset}")

    def near(self, crystal_id: str, spread: float = DEFAULT_SPREAD) -> Where:
        index = self.index_of(crystal_id)
        found = self.atlas.table["id"].iloc[index]
        return Where.near(self.atlas.latents[index], f"{found} ({self.atlas.crystals[index].formula})", spread)

    def near_crystal(self, crystal: Crystal, label: str, spread: float = DEFAULT_SPREAD) -> Where:
        """Around an uploaded crystal, encoded in the setting the model reads best."""
        choice = self.autoencoder.select_frames([crystal])[0]
        return Where.near(self.autoencoder.encode([choice.crystal])[0], label, spread)

    def region(self, crystal_ids, spread: float = DEFAULT_SPREAD) -> Where:
        ids = list(dict.fromkeys(str(i) for i in crystal_ids))
        indices = [self.index_of(i) for i in ids]
        return Where.region(self.atlas.latents[indices], f"within a region of {len(ids)} crystals", spread)

    def where(self, *, near: str | None = None, region: list[str] | None = None, spread: float | None = None,
              temperature: float = 1.0) -> Where:
        """Where a run samples: `near` an atlas crystal (id or formula) or a structure file, within the `region` of
        these atlas crystals, else across the whole density at `temperature` (`LatentDensity.sample`)."""
        from pathlib import Path

        from nesf.data.structure_io import read_structure_file

        if near and region:
            raise NesfError("sample near one crystal or within a region, not both")
        spread = DEFAULT_SPREAD if spread is None else spread
        if near and Path(near).is_file():
            return self.near_crystal(read_structure_file(Path(near))[0], Path(near).name, spread)
        if near:
            return self.near(near, spread)
        if region:
            return self.region(region, spread)
        return Where(temperature=float(temperature), label="across the whole latent space" + (
            f" at temperature {temperature:g}" if temperature != 1 else ""))

    def run(self, count: int, seed: int = 0, where: Where = Where(), decode_config=None,
            progress=None, support: bool = False) -> GeneratedSet:
        """`count` samples decoded and judged; `progress(fraction, message)`: decoding is the first
        DECODE_SHARE of the work, judging (validity, uniqueness, novelty) the rest. `support`: a sample whose atom
        count no training crystal has is replaced by a new draw (`AtomCountSupport`)."""
        from nesf.inference.atlas import nearest_neighbors

        progress = progress or (lambda fraction, message: None)
        kept = AtomCountSupport.of(self.training_crystals) if support else None
        latents, crystals = generate(self.autoencoder, self.density, count, seed, where, decode_config,
                                     progress=lambda f, m: progress(DECODE_SHARE * f, m), support=kept)
        replaced = sum(not c.id.startswith(f"{ID_PREFIX}-{seed}-") for c in crystals)  # drawn in a later round
        progress(DECODE_SHARE, f"judging {count} samples: validity, uniqueness, novelty")
        scores = score_crystals(crystals, self.training_crystals)
        ids = self.atlas.table["id"].astype(str).tolist()
        nearest = []
        for latent in latents:
            order, distances = nearest_neighbors(self.atlas, latent, NEAREST_COUNT)
            nearest.append([(ids[i], float(d)) for i, d in zip(order, distances)])
        progress(1.0, f"{count} samples decoded and judged")
        return GeneratedSet(latents, crystals, scores, nearest, where.label, self.density.label, seed, replaced)


def real_coverage(session: "GenerationSession", count: int, *, seed: int = 0, cache_dir=None, progress=None):
    """The same metrics for `count` real crystals drawn from the atlas's training split (`seed`): what a generator as
    good as the data would score at this sample count (COV-R grows with the count; novelty is nil by construction)."""
    rng = np.random.default_rng(seed)
    training = session.training_crystals
    picked = [training[i] for i in np.sort(rng.choice(len(training), min(count, len(training)), replace=False))]
    as_generated = GeneratedSet(np.zeros((len(picked), 0), dtype=np.float32), picked, None, [], "training split",
                                "real crystals", seed)
    return session_coverage(session, as_generated, cache_dir=cache_dir, progress=progress, cache_generated=True)


def session_coverage(session: "GenerationSession", generated: GeneratedSet, *, cache_dir=None,
                     progress=None, cache_generated: bool = False):
    """CDVAE's generation metrics (`scores.score_generated`) of a run against its atlas's test crystals (coverage,
    property distributions) and training crystals (novelty), at the dataset's coverage cutoffs; `cache_dir` keeps
    the test crystals' fingerprints (computed once: ~50 s for LCS6A's 301 on one core). `progress(fraction, message)`."""
    from nesf.data.datasets import evaluated_dataset
    from nesf.inference.generation.scores import coverage_cutoffs, score_generated

    test = (session.atlas.table["split"] == "test").to_numpy()
    reference = [c for c, keep in zip(session.atlas.crystals, test) if keep]
    if not reference:
        raise NesfError(f"the atlas of {session.atlas.dataset} has no test crystals to measure coverage against")
    scores, _ = score_generated(generated.crystals, reference, session.training_crystals,
                                cutoffs=coverage_cutoffs(evaluated_dataset(session.atlas.dataset)),
                                cache_dir=cache_dir, progress=progress, cache_generated=cache_generated)
    return scores


def validity_comment(sample_id: str, structural: bool, compositional: bool) -> str:
    """The first line of a generated sample's CIF: whether CDVAE's validity rules pass it, and which fails (so an
    invalid sample is marked in its own file, not only in summary.csv)."""
    failed = [rule for rule, passed in (("structural: two atoms closer than 0.5 A", structural),
                                        ("compositional: no charge-neutral assignment of oxidation states (SMACT)",
                                         compositional)) if not passed]
    verdict = "INVALID (" + "; ".join(failed) + ")" if failed else "valid (structural and compositional rules)"
    return f"# NeSF Explorer generated sample {sample_id}: {verdict}; scores in summary.csv\n"


def write_generated(generated: GeneratedSet, out_dir: Path, *, valid_only: bool = False) -> list[Path]:
    """CIFs of the samples (all, or the valid ones) and `summary.csv` with every sample's scores."""
    from nesf.data.structure_io import to_cif

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    scores = generated.scores
    for crystal, valid, structural, compositional in zip(generated.crystals, scores.valid, scores.structure_valid,
                                                         scores.composition_valid):
        if crystal.num_atoms and (valid or not valid_only):
            path = out_dir / f"{crystal.id}.cif"
            path.write_text(validity_comment(crystal.id, bool(structural), bool(compositional)) + to_cif(crystal))
            paths.append(path)
    (out_dir / "summary.csv").write_text(generated.summary_csv())
    return paths


def read_generated(paths) -> tuple[list[Crystal], list[str]]:
    """Crystals of generated structure files as written (no cell conversion, no range checks: an invalid structure
    is scored, not refused), and one problem line per file that cannot be read (scored as invalid by the caller)."""
    from pymatgen.core import Structure

    from nesf.data.structure_io import structure_files

    crystals, problems = [], []
    for path in structure_files(paths):
        try:
            structure = Structure.from_file(str(path))
            if not structure.is_ordered:
                raise ValueError("a disordered structure (partial occupancies)")
            crystals.append(Crystal.from_structure(structure, path.stem))
        except Exception as exc:  # pymatgen raises many types for unreadable files
            problems.append(f"{path}: not readable as a structure ({str(exc)[:200] or type(exc).__name__})")
    return crystals, problems


def unreadable_placeholder(index: int) -> Crystal:
    """Stands for a generated file that cannot be read: no atoms, so invalid and without fingerprints."""
    return Crystal(np.eye(3), np.zeros((0, 3)), np.zeros(0, dtype=np.int64), f"unreadable-{index}")
