#!/usr/bin/env bash
# Installs headless Chromium and its driver from the distribution's packages,
# for the browser tests of the web page. Idempotent: does nothing when
# /usr/bin/chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "install-chromium: headless Chromium is missing; installing the distribution's chromium and chromium-driver packages with apt-get (a few minutes)..." >&2
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine.
if ! apt-cache show chromium >/dev/null 2>&1; then
  $SUDO apt-get update -q
fi
if ! $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver
fi
test -x /usr/bin/chromium
