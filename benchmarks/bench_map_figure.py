"""Server-side cost of one latent-map rerun at scale: building the plotly figure and serializing it the way
the map's chart does (`app.ui.map_chart.figure_json`, as `st.plotly_chart` does), for an atlas's
table and map, colored by a continuous and a categorical attribute and with half the points greyed by a filter.

    python benchmarks/bench_map_figure.py --atlas /tmp/atlas100k/lcs6a.atlas.pt
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the app package, run from anywhere

import numpy as np  # noqa: E402

from app.ui.latent_plot import base_map_figure, map_hover  # noqa: E402
from app.ui.map_chart import figure_json  # noqa: E402
from nesf.inference.atlas import load_atlas  # noqa: E402


def _timed(build, repeats: int) -> tuple[float, float, int]:
    builds, serials = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        figure = build()
        built = time.perf_counter()
        spec = figure_json(figure)
        builds.append(built - started)
        serials.append(time.perf_counter() - built)
    return statistics.median(builds), statistics.median(serials), len(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atlas", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    atlas = load_atlas(args.atlas)   # without its model: table, crystals and maps
    collection = types.SimpleNamespace(table=atlas.table)
    started = time.perf_counter()
    hover = map_hover(atlas.table)
    print(f"{len(atlas.table)} points; hover text and row indices, once per dataset: {time.perf_counter() - started:.2f} s")
    greyed = np.random.default_rng(0).random(len(atlas.table)) < 0.5
    cases = {"volume": dict(color_by="volume"), "crystal system": dict(color_by="crystal system"),
             "volume, half greyed": dict(color_by="volume", greyed=greyed)}
    for name, options in cases.items():
        build, serialize, size = _timed(lambda: base_map_figure(collection, atlas.tsne, hover=hover, **options),
                                        args.repeats)
        print(f"{name}: build {build:.2f} s, serialize {serialize:.2f} s, spec {size / 1e6:.1f} MB "
              f"(median of {args.repeats})")


if __name__ == "__main__":
    main()
