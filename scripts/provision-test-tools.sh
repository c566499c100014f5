#!/usr/bin/env bash
# System tools the test suite uses: strace (to watch fsync and rename calls), Debian's docker-compose (to check
# docker/compose.yaml without a Docker engine), prometheus and promtool (to scrape live workers and test alert rules),
# chromium (to drive the Web UI headless) and nginx (a TLS-terminating gRPC proxy in front of the dev server, which has
# no TLS of its own). Installs what is missing with apt-get; a no-op when all are present.
set -euo pipefail
missing=()
command -v strace >/dev/null || missing+=(strace)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "The tests that need ${missing[*]} will be skipped: install them (apt-get install ${missing[*]})." >&2
  exit 0
fi
echo "Installing ${missing[*]} for the test suite" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
