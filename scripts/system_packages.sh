#!/usr/bin/env bash
# Install the distribution packages named on the command line when their command is
# missing: `scripts/system_packages.sh chromium espeak-ng`. Playwright cannot download
# its own browser here, and espeak-ng speaks the demonstration's synthetic speech.
set -euo pipefail
missing=()
for pkg in "$@"; do
  case "$pkg" in
    chromium) command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=("$pkg") ;;
    *) command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "== installing ${missing[*]} from the distribution's packages" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing ${missing[*]} and apt-get is not available: install them, then retry." >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
