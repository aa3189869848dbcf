#!/bin/sh
# Installs what `make build-cuda` needs: Debian's nvidia-cuda-toolkit (CUDA
# 11.8, in the non-free component, which this script adds to the apt sources)
# and g++-11 (nvcc 11.8 rejects gcc 12, bookworm's default). Idempotent: does
# nothing when nvcc 11.8 and g++-11 are already there. Needs root and apt-get.
# Used by `make cuda-toolkit`, .ci/run and scripts/gpu-check.sh.
set -eu
# have: nvcc, a host compiler it accepts (g++-11 for 11.x; the default g++
# for CUDA 12 and later) and static cuBLAS (Debian's path or the toolkit's).
have() {
	command -v nvcc >/dev/null 2>&1 || return 1
	major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
	if [ "${major:-0}" -lt 12 ]; then command -v g++-11 >/dev/null 2>&1 || return 1; fi
	root=$(dirname "$(dirname "$(command -v nvcc)")")
	for f in /usr/lib/x86_64-linux-gnu/libcublas_static.a "$root/lib64/libcublas_static.a" \
		"$root/targets/x86_64-linux/lib/libcublas_static.a"; do
		[ -e "$f" ] && return 0
	done
	return 1
}
if have; then
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "cuda-toolkit.sh: nvcc and g++-11 are missing; as root on Debian bookworm run: sh scripts/cuda-toolkit.sh" >&2
	exit 1
fi
# Add contrib and non-free to every deb822 stanza of the Debian sources
# (nvidia-cuda-toolkit is in non-free and depends on contrib's nvidia-cuda-dev
# wrappers on some releases). A one-line sources.list is handled too.
added=0
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	if grep -q '^Components:' "$f" && grep '^Components:' "$f" | grep -qv 'non-free\( \|$\)'; then
		sed -i -E '/^Components:/{/ non-free( |$)/!s/$/ non-free/}; /^Components:/{/ contrib( |$)/!s/$/ contrib/}' "$f"
		added=1
	fi
done
if [ -f /etc/apt/sources.list ] && grep -qE '^deb .*debian.* main' /etc/apt/sources.list &&
	grep -E '^deb .*debian.* main' /etc/apt/sources.list | grep -qv 'non-free\( \|$\)'; then
	sed -i -E '/^deb .*debian.* main/{/ non-free( |$)/!s/$/ contrib non-free/}' /etc/apt/sources.list
	added=1
fi
[ "$added" = 1 ] && echo "cuda-toolkit.sh: added contrib and non-free to the apt sources" >&2
echo "cuda-toolkit.sh: installing nvidia-cuda-toolkit (CUDA 11.8, ~3 GB) and g++-11" >&2
if ! apt-get update -qq; then
	echo "cuda-toolkit.sh: apt-get update failed (no network to the Debian mirror?)" >&2
	exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	nvidia-cuda-toolkit g++-11 >/dev/null; then
	echo "cuda-toolkit.sh: apt-get install nvidia-cuda-toolkit g++-11 failed" >&2
	exit 1
fi
if ! have; then
	echo "cuda-toolkit.sh: installed, but nvcc, g++-11 or libcublas_static.a is still missing" >&2
	exit 1
fi
nvcc --version | tail -n 2 >&2
