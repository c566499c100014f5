#!/usr/bin/env bash
# npm run demo: install and provision what is missing, then run the whole pipeline once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
exec node dist/scripts/demo.js "$@"
