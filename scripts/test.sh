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
# A file that requires none of these starts no Temporal server and no process of its own: such files run side by side,
# one per core. The others start servers, workers and training processes: two at a time (TEST_PROCESS_FILES), since
# much of their time is spent waiting (timeouts, retries, process starts) and each has its own server, ports and data.
starts_processes='require\("(node:child_process|@temporalio/testing|@temporalio/worker|\.\./activities[^"]*|\.\./lib/child-task|\./helpers/temporal)"\)'
mapfile -t side_by_side < <(grep -L -E "$starts_processes" "$@")
mapfile -t with_processes < <(grep -l -E "$starts_processes" "$@")
status=0
if [ "${#side_by_side[@]}" -gt 0 ]; then node --test --test-concurrency="$(nproc)" "${side_by_side[@]}" || status=$?; fi
if [ "${#with_processes[@]}" -gt 0 ]; then node --test --test-concurrency="${TEST_PROCESS_FILES:-2}" "${with_processes[@]}" || status=$?; fi
exit "$status"
