#!/usr/bin/env bash
# Browser tests drive Debian's chromium through Playwright (never Playwright's own browser download,
# which cannot work offline). Installs the Debian package if it is missing; needs root or sudo.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_browser: /usr/bin/chromium is missing and we are not root; install Debian's 'chromium' package" >&2
    exit 1
  fi
fi
echo "install_browser: installing Debian chromium (browser tests need it)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
