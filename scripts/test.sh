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
# Test files only: node --test given a folder would also run helpers meant to be started by a test.
if [ "$#" -eq 0 ]; then
  mapfile -t tests < <(find dist/test -name '*.test.js' | sort)
  set -- "${tests[@]}"
fi
exec node --test --test-concurrency=1 "$@"
