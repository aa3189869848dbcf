#!/bin/sh
# One command on a GPU machine (docs/cuda.md): installs what is missing
# (scripts/cuda-toolkit.sh: Debian's nvidia-cuda-toolkit and g++-11), builds
# kernels/cuda and bin/rljob-cuda, runs the CUDA conformance tests with
# RLJOB_REQUIRE_CUDA=1 (a skip is a failure), then the GPU benchmarks
# (make bench-cuda), and writes summary.md and the logs to the folder given
# as the argument, else $OUT, else ./gpu-check-out. Prints what it measured.
# Budget: under 8 minutes on one H100 (each step has a timeout).
#
# Without Go or the toolkit on the machine (no network), it runs a test
# binary built elsewhere if one was brought along: bin/cuda-kernels.test
# (make cuda-test-bin).
set -u
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out"
log=$out/gpu-check.log
sum=$out/summary.md
: >"$log"
t0=$(date +%s)
status=0
say() { echo "gpu-check: $*" | tee -a "$log" >&2; }
elapsed() { echo $(($(date +%s) - t0)); }
# run NAME SECONDS CMD...: runs CMD with a timeout, its output in NAME.log.
run() {
	name=$1 secs=$2
	shift 2
	say "[$(elapsed)s] $name: $*"
	if timeout "$secs" "$@" >"$out/$name.log" 2>&1; then
		say "[$(elapsed)s] $name: ok"
		return 0
	fi
	rc=$?
	[ "$rc" = 124 ] && say "[$(elapsed)s] $name: TIMED OUT after ${secs}s" || say "[$(elapsed)s] $name: FAILED (exit $rc)"
	tail -n 30 "$out/$name.log" >&2
	status=1
	return 1
}

{
	echo "# gpu-check $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "revision: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "host: $(uname -srm), $(nproc) CPUs"
} >"$sum"

if command -v nvidia-smi >/dev/null 2>&1; then
	nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >"$out/nvidia-smi.csv" 2>&1
	echo "gpu: $(tail -n +2 "$out/nvidia-smi.csv" | head -1)" >>"$sum"
else
	say "nvidia-smi not found: is there a GPU and a driver?"
	echo "gpu: nvidia-smi not found" >>"$sum"
fi

# toolkit: Debian's (installs when missing and the mirror is reachable), or
# one already on the machine
[ -d /usr/local/cuda/bin ] && PATH=$PATH:/usr/local/cuda/bin && export PATH
have_build=1
if ! command -v nvcc >/dev/null 2>&1 || ! command -v g++-11 >/dev/null 2>&1; then
	run toolkit 400 sh scripts/cuda-toolkit.sh || true
fi
for tool in nvcc g++-11 go; do
	if ! command -v $tool >/dev/null 2>&1; then
		say "$tool is missing and could not be installed: cannot build here"
		have_build=0
	fi
done
echo "toolkit: $(nvcc --version 2>/dev/null | tail -n 1 || echo none); go: $(go version 2>/dev/null || echo none)" >>"$sum"

testbin=
if [ "$have_build" = 1 ]; then
	if run build-cuda 360 make -j"$(nproc)" build-cuda; then
		run test-bin 240 go test -c -tags "duckdb_arrow cuda" -o bin/cuda-kernels.test ./kernels/cuda/ && testbin=bin/cuda-kernels.test
		[ -x bin/rljob-cuda ] && bin/rljob-cuda version 2>&1 | tee -a "$sum" | tee -a "$log" >&2
	fi
elif [ -x bin/cuda-kernels.test ]; then
	say "using the prebuilt bin/cuda-kernels.test"
	testbin=bin/cuda-kernels.test
else
	say "no toolkit, no Go and no prebuilt bin/cuda-kernels.test: nothing to run"
	status=1
fi

if [ -n "$testbin" ]; then
	export RLJOB_REQUIRE_CUDA=1
	run tests 180 "$testbin" -test.v -test.count=1 -test.run . || true
	{
		echo
		echo "## conformance tests (RLJOB_REQUIRE_CUDA=1)"
		echo
		echo '```'
		grep -E '^(=== RUN|--- (PASS|FAIL|SKIP)|PASS|FAIL|ok)|differ|error|want' "$out/tests.log" | grep -v '^=== RUN' | head -80
		echo '```'
	} >>"$sum"
	run bench-kernels 150 "$testbin" -test.run '^$' -test.bench 'CUDAGemm|CUDASample' -test.benchtime 20x || true
	run bench-forward 120 "$testbin" -test.run '^$' -test.bench 'CUDAForwardGemms' -test.benchtime 2x || true
	{
		echo
		echo "## benchmarks"
		echo
		echo '```'
		grep -hE '^Benchmark|^(cpu|goos):' "$out/bench-kernels.log" "$out/bench-forward.log" 2>/dev/null
		echo '```'
	} >>"$sum"
fi
echo >>"$sum"
echo "total: $(elapsed)s, status $status" >>"$sum"
cat "$sum"
exit $status
