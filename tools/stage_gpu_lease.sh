#!/usr/bin/env bash
# Stage what a lent GPU machine needs for tools/gpu_lease.py into .gpu/ (git-ignored, carried by the device
# tool): the LCS6A splits (2.5 MB) and cp312 wheels of the packages its image lacks (pymatgen-core and the modules
# `pymatgen.core` imports, ~7 MB). Run here, in the repository root, with the data directory in $NESF_DATA_DIR:
#
#     NESF_DATA_DIR=/path/to/data bash tools/stage_gpu_lease.sh
#
# then, on the device (carry [".gpu"]), one command, e.g. two cycles side by side from the shipped model:
#
#     pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl && export PYTHONPATH=/tmp/site
#     python3 tools/gpu_lease.py --budget-s 540 --init-from checkpoints/lcs6a.pt --lr 2e-4 --dropout 0 \
#         --lengths-weight 5 --angles-weight 100 --ybco-folds none --data-dir .gpu/data --work /tmp/a --out $OUT/a &
#     python3 tools/gpu_lease.py ... --work /tmp/b --out $OUT/b & wait
set -euo pipefail
data="${NESF_DATA_DIR:?set NESF_DATA_DIR to the data directory holding nesf_paper/}"
mkdir -p .gpu/data/nesf_paper .gpu/wheels
for split in train val test; do
    cp -r "$data/nesf_paper/dataset_lim_l6_$split" .gpu/data/nesf_paper/
done
pymatgen_core=$(python3 -m pip show pymatgen-core 2>/dev/null | sed -n 's/^Version: //p')
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/wheels "pymatgen-core${pymatgen_core:+==$pymatgen_core}" monty orjson \
    ruamel.yaml ruamel.yaml.clib spglib uncertainties palettable
du -sh .gpu/data .gpu/wheels
