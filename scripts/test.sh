#!/usr/bin/env bash
# The whole suite: provisions what is missing, lints, then runs unit and end-to-end tests on native TensorFlow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
bash scripts/provision-test-tools.sh
npm run --silent lint
# The suite must run on native TensorFlow: TFJS_BACKEND=native turns a silent fallback into a failure.
export TFJS_BACKEND="${TFJS_BACKEND:-native}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec node --test --test-concurrency=1 "${@:-dist/test/}"
