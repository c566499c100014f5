#!/usr/bin/env bash
# Installs and builds what is missing: npm packages, the compiled project, the Temporal CLI, the versitygw object
# store, native TensorFlow.
# Idempotent: on a machine that already has everything it only checks.
#   scripts/provision.sh             everything
#   scripts/provision.sh --temporal  packages, build, the Temporal CLI and versitygw only
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # onnxruntime-node ships its CPU binaries; its install step would only fetch optional CUDA ones.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
npm run --silent build
node dist/scripts/temporal-cli.js
node dist/scripts/object-store.js --provision
if [ "${1:-}" != "--temporal" ]; then
  node dist/scripts/provision-tensorflow.js
fi
