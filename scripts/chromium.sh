#!/bin/sh
# Installs Debian's chromium (headless browser for the report test and the
# README screenshot) when it is missing. Needs root and apt-get.
set -eu
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "chromium.sh: chromium is missing; install it as root: apt-get install chromium" >&2
	exit 1
fi
echo "chromium.sh: installing chromium (headless browser for the report test)" >&2
apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
command -v chromium >/dev/null 2>&1
