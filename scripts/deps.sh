#!/bin/sh
# Installs what rljob needs beyond Go and gcc: OpenBLAS for the fast matmul.
# Without it (not root, no apt) the build falls back to pure-Go kernels.
case "$(sh "$(dirname "$0")/buildtags.sh")" in
*openblas*) exit 0 ;;
esac
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing libopenblas-dev (fast matmul)" >&2
	apt-get update -qq >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >/dev/null 2>&1 ||
		echo "warning: could not install libopenblas-dev; using pure-Go matmul (slower)" >&2
else
	echo "warning: libopenblas-dev not installed and not root; using pure-Go matmul (slower)" >&2
fi
exit 0
