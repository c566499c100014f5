#!/usr/bin/env bash
# Real Fashion-MNIST from Debian's dataset-fashion-mnist package, copied into the datasets root as the built-in
# `builtin:fashion-mnist` (IDX files). With --png, also written out as a 70,000-file PNG folder tree
# (<datasets root>/fashion-mnist-png/<class>/<part>-<index>.png) for folder-source runs and bench:preprocess.
# Idempotent: what exists is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
debian=/usr/share/datasets/fashion-mnist
source="${FASHION_MNIST_DIR:-$debian}"
datasets="${TEMPORAL_ML_DATASETS_ROOT:-${TEMPORAL_ML_DATA_DIR:-.data}/datasets}"
target="$datasets/fashion-mnist"
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

if [ ! -f "$source/train-images-idx3-ubyte.gz" ]; then
  if [ "$source" != "$debian" ] || ! command -v apt-get >/dev/null; then
    echo "Fashion-MNIST not found in $source. Put the four IDX files there (${files[*]}), or install Debian's dataset-fashion-mnist." >&2
    exit 1
  fi
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi

if [ ! -f "$target/${files[3]}" ]; then
  staging="$target.partial-$$"
  mkdir -p "$staging"
  for f in "${files[@]}"; do cp "$source/$f" "$staging/$f"; done
  rm -rf "$target" && mv "$staging" "$target"
  echo "Fashion-MNIST IDX files in $target (builtin:fashion-mnist)"
fi

if [ "${1:-}" = "--png" ]; then
  [ -f dist/scripts/fashion-mnist-png.js ] || npm run --silent build
  node dist/scripts/fashion-mnist-png.js "$target" "$datasets/fashion-mnist-png"
fi
