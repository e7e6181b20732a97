#!/usr/bin/env bash
# Installs Debian's chromium when it is missing and prints its path. The
# HTML report test renders report.html in it headless (screenshot + DOM).
# Debian's package is used because nothing else can be downloaded here.
set -euo pipefail
if path=$(command -v chromium 2>/dev/null); then
	echo "$path"
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
echo "chromium not found: installing Debian's chromium package" >&2
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >&2
command -v chromium
