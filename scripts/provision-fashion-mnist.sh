#!/usr/bin/env bash
# Real Fashion-MNIST (IDX files) from Debian's dataset-fashion-mnist package, for bench:quality.
set -euo pipefail
dir="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if [ "$dir" != /usr/share/datasets/fashion-mnist ] || ! command -v apt-get >/dev/null; then
  echo "Fashion-MNIST not found in $dir. Put the four IDX files there (train/t10k images and labels), or install Debian's dataset-fashion-mnist." >&2
  exit 1
fi
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
