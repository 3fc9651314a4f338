#!/usr/bin/env bash
# The browser tests drive the distribution's Chromium (Playwright cannot download its own
# browsers here): install the package when it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
echo "== installing chromium from the distribution's packages (browser tests)" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing and apt-get is not available: install Chromium, then retry." >&2
  exit 1
fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
