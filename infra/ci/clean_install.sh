#!/usr/bin/env bash
# The package as a user gets it: the built wheel, no extras, in a fresh venv. Every module must
# import there, `uvd build` then `uvd train` must run on sample photos, and `uvd plan` on the
# packaged figures. The test suite's venv has every extra installed, so only this check catches a
# runtime import that pyproject.toml's dependencies lack. Run by `make test`; pip's cache and the
# constraints keep it mostly local.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
DEV=${DEV:-.venv/bin}  # the dev venv: builds the wheel, and collects the sample (scikit-image is an extra)
WORK=${WORK:-out/clean-install}
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

rm -rf build  # setuptools' staging folder: a module deleted from the source must not linger in the wheel
"$DEV/python" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" .
"$PYTHON" -m venv "$WORK/venv"
V="$WORK/venv/bin"
# torch first, pinned: an unpinned request pulls a multi-GB CUDA build (see the Makefile)
"$V/python" -m pip install -q --no-compile -c constraints.txt torch==2.13.0
"$V/python" -m pip install -q --no-compile -c constraints.txt "$WORK"/dist/uvd-*.whl
echo "clean install: wheel and its dependencies installed (${SECONDS} s)"
"$DEV/uvd" sample-data "$WORK/sample" > /dev/null

cd "$WORK"  # away from the source tree: only the installed package is importable
"$V/python" - <<'PY'
import importlib
import pkgutil

import uvd

names = sorted(m.name for m in pkgutil.walk_packages(uvd.__path__, "uvd.") if not m.name.endswith(".__main__"))
for name in names:
    importlib.import_module(name)
print(f"clean install: all {len(names)} modules of uvd import")
PY
"$V/uvd" build --source images:sample/images --out shards --samples-per-shard 4 --no-progress
"$V/uvd" train shards --steps 3 --seq-len 512 --batch-size 2 --log-every 1 --out checkpoint
PLAN=$("$V/uvd" plan)  # on the measured figures that ship in the wheel (pipeline/tools/figures.json)
grep -q "Runner jobs on Dataflow" <<< "$PLAN"
echo "clean install: OK (${SECONDS} s)"
