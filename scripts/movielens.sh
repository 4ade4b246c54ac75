#!/usr/bin/env bash
# Prints the path of MovieLens 100k (`ml-100k.inter`) as shipped inside the PyPI package
# `recbole`, fetching the wheel (no dependencies, nothing installed into Python) into
# .cache/eval the first time. The data is not committed: `make eval` calls this.
set -euo pipefail
version=1.2.1
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cache/eval"
inter="$dir/ml-100k.inter"
if [ ! -s "$inter" ]; then
  command -v python3 >/dev/null || { echo "movielens: python3 is needed to fetch recbole" >&2; exit 1; }
  mkdir -p "$dir/wheel"
  echo "movielens: fetching recbole==$version from PyPI (for its ml-100k dataset)" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$dir/wheel" "recbole==$version" >&2
  python3 - "$dir/wheel" "$inter" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("recbole-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("recbole/dataset_example/ml-100k/ml-100k.inter")
pathlib.Path(sys.argv[2]).write_bytes(data)
PY
fi
echo "$inter"
