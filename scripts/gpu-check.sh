#!/bin/sh
# One command on a GPU machine (docs/cuda.md): installs what is missing
# (scripts/cuda-toolkit.sh: Debian's nvidia-cuda-toolkit and g++-11), builds
# kernels/cuda and bin/rljob-cuda, runs the CUDA conformance tests with
# RLJOB_REQUIRE_CUDA=1 (a skip is a failure), then the GPU benchmarks
# (make bench-cuda), and writes summary.md and the logs to the folder given
# as the argument, else $OUT, else ./gpu-check-out. Prints what it measured.
# Budget: under 8 minutes on one H100 (each step has a timeout).
#
# It uses the toolkit it finds (Debian's, /usr/local/cuda, any nvcc on the
# PATH) and installs Debian's only when there is none. Without Go on the
# machine it still compiles every .cu with the local nvcc, then runs the
# test binaries built elsewhere and brought along (make cuda-test-bin;
# cuBLAS loaded from the machine's libcublas.so; carry bin/):
#   bin/cuda-kernels.test   every kernel against the CPU kernels (~5 MB)
#   bin/cuda-trainer.test   the trainer's CUDA backend: UseDevice, forward
#                           log-probs CPU == CUDA bit for bit, a train step
#                           within tolerance, sampling the CPU's tokens and
#                           log-prob bits, AdamW/grad norm bits, a device
#                           error as an error (TestUseDevice|TestCUDA, ~7 MB)
#   bin/cuda-cli.test.gz    rljob run --device cuda vs cpu: same rollout
#                           tokens, device recorded (TestDevice); resume
#                           after kill -9 with --device cuda gives the
#                           uninterrupted run's bytes (TestCrashSafetyCUDA;
#                           gunzipped here, run in cmd/rljob for its testdata)
# Plan of one run (timeouts): compile 300 s, kernel tests 180 s, trainer
# tests 90 s, CLI tests 180 s, kernel benchmarks 150 + 120 s, the trainer's
# 200 + 150 s. The whole is meant to stay under 8 minutes (each step well
# inside its timeout); not yet measured: it has not run on a GPU.
set -u
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out"
out=$(cd "$out" && pwd) # absolute: the CLI tests run in cmd/rljob
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
	timeout "$secs" "$@" >"$out/$name.log" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		say "[$(elapsed)s] $name: ok"
		return 0
	fi
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

# toolkit: one already on the machine, else Debian's (installed when the
# mirror is reachable)
[ -d /usr/local/cuda/bin ] && PATH=$PATH:/usr/local/cuda/bin && export PATH
if ! command -v nvcc >/dev/null 2>&1; then
	run toolkit 400 sh scripts/cuda-toolkit.sh || say "no nvcc and the toolkit could not be installed"
fi
if command -v nvcc >/dev/null 2>&1; then
	root=$(dirname "$(dirname "$(command -v nvcc)")")
	# a toolkit outside Debian's paths: where its static libraries are
	CGO_LDFLAGS="-L$root/lib64 -L$root/targets/x86_64-linux/lib ${CGO_LDFLAGS:-}"
	export CGO_LDFLAGS
fi
# libcublas.so for the dlopen build of the test binary
cublas=$(find /usr /opt -name 'libcublas.so*' -not -path '*/stubs/*' 2>/dev/null | head -n 1)
[ -n "$cublas" ] && LD_LIBRARY_PATH=$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} && export LD_LIBRARY_PATH
echo "toolkit: $(nvcc --version 2>/dev/null | tail -n 1 || echo none); go: $(go version 2>/dev/null || echo none); libcublas: ${cublas:-none}" >>"$sum"

# Every .cu compiled by this machine's nvcc (whatever its version).
libs_ok=0
if command -v nvcc >/dev/null 2>&1; then
	run cuda-lib 300 make -j"$(nproc)" kernels/cuda/lib/librljobcuda.a kernels/cuda/lib/librljobcuda_dl.a && libs_ok=1
fi
testbin=
if [ "$libs_ok" = 1 ] && command -v go >/dev/null 2>&1; then
	sh scripts/cuda-libhash.sh kernels/cuda/libhash_gen.go kernels/cuda/lib/librljobcuda.a kernels/cuda/lib/librljobcuda_dl.a
	run build-cuda 360 go build -tags "duckdb_arrow cuda" -o bin/rljob-cuda ./cmd/rljob &&
		bin/rljob-cuda version 2>&1 | tee -a "$sum" | tee -a "$log" >&2
	run test-bin 240 go test -c -tags "cuda cuda_dlcublas" -ldflags=-s -o bin/cuda-kernels.test ./kernels/cuda/ &&
		testbin=bin/cuda-kernels.test
	run trainer-bin 240 go test -c -tags "duckdb_arrow cuda cuda_dlcublas" -ldflags=-s -o bin/cuda-trainer.test ./trainer/
	run cli-bin 360 go test -c -tags "duckdb_arrow cuda cuda_dlcublas" -ldflags=-s -o bin/cuda-cli.test ./cmd/rljob/
elif [ -x bin/cuda-kernels.test ]; then
	say "no Go here (or the kernels did not compile): running the prebuilt bin/cuda-*.test (make cuda-test-bin)"
	echo "tests: the prebuilt bin/cuda-*.test (Go is not on this machine)" >>"$sum"
	testbin=bin/cuda-kernels.test
	[ -f bin/cuda-cli.test.gz ] && gunzip -c bin/cuda-cli.test.gz >"$out/cuda-cli.test" && chmod +x "$out/cuda-cli.test"
else
	say "no Go and no prebuilt bin/cuda-kernels.test: nothing to run (build one with make cuda-test-bin and bring it)"
	status=1
fi

if [ -n "$testbin" ]; then
	export RLJOB_REQUIRE_CUDA=1
	# each kernel waited for, so that a fault names its own kernel (the
	# tests' timings do not matter; the CLI tests and benchmarks run without)
	export RLJOB_CUDA_SYNC=1
	run tests 180 "$testbin" -test.v -test.count=1 -test.run . || true
	# the trainer's CUDA backend and rljob run --device cuda
	: >"$out/trainer-tests.log"
	: >"$out/cli-tests.log"
	if [ -x bin/cuda-trainer.test ]; then
		run trainer-tests 90 bin/cuda-trainer.test -test.v -test.count=1 -test.run 'TestUseDevice|TestCUDA' || true
	else
		say "no bin/cuda-trainer.test: the trainer backend is not checked (make cuda-test-bin)"
		status=1
	fi
	unset RLJOB_CUDA_SYNC
	cli=
	[ -x bin/cuda-cli.test ] && cli=$(pwd)/bin/cuda-cli.test
	[ -x "$out/cuda-cli.test" ] && cli=$(cd "$out" && pwd)/cuda-cli.test
	if [ -n "$cli" ]; then
		(cd cmd/rljob && run cli-tests 180 "$cli" -test.v -test.count=1 -test.run 'TestDevice|TestCrashSafetyCUDA') || status=1
		rm -f "$out/cuda-cli.test"
	else
		say "no bin/cuda-cli.test(.gz): rljob run --device cuda is not checked (make cuda-test-bin)"
		status=1
	fi
	{
		echo
		echo "## conformance tests (RLJOB_REQUIRE_CUDA=1)"
		echo
		echo '```'
		grep -hE '^(--- (PASS|FAIL|SKIP)|PASS|FAIL|ok)|^ +[a-z_]+_test.go:[0-9]+:' "$out/tests.log" "$out/trainer-tests.log" "$out/cli-tests.log" | head -140
		echo '```'
	} >>"$sum"
	run bench-kernels 150 "$testbin" -test.run '^$' -test.bench 'CUDAGemm|CUDASample' -test.benchtime 20x || true
	run bench-forward 120 "$testbin" -test.run '^$' -test.bench 'CUDAForwardGemms' -test.benchtime 2x || true
	# the whole 0.5B step and sampler, the model's buffers on the GPU
	if [ -x bin/cuda-trainer.test ]; then
		run bench-train 200 bin/cuda-trainer.test -test.run '^$' -test.bench 'CUDATrainStepQwen' -test.benchtime 2x || true
		run bench-sample 150 bin/cuda-trainer.test -test.run '^$' -test.bench 'CUDASampleQwen' -test.benchtime 1x || true
	fi
	{
		echo
		echo "## benchmarks"
		echo
		echo '```'
		grep -hE '^Benchmark|^(cpu|goos):' "$out/bench-kernels.log" "$out/bench-forward.log" "$out/bench-train.log" "$out/bench-sample.log" 2>/dev/null
		echo '```'
	} >>"$sum"
fi
echo >>"$sum"
echo "total: $(elapsed)s, status $status" >>"$sum"
cat "$sum"
exit $status
