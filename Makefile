# rljob — see README.md. Two commands do everything on a fresh machine with
# Go and gcc: `make demo` and `make test`.
GO       ?= go
TAGS      = duckdb_arrow
BIN      ?= bin/rljob
PKGS      = ./...
# The Go loops of the kernels must not be fused into FMAs by the compiler
# (GOAMD64=v3 allows it): that would change their bits (docs/kernels.md).
export GOAMD64 = v1

.PHONY: all build test test-short bench bench-all bench-bf16 bench-torch bench-qwen demo fuzz clean fmt vet
.PHONY: cuda-toolkit cuda-lib build-cuda test-cuda bench-cuda cuda-test-bin gpu-check cuda-emu-lib test-cuda-emu

all: build

build:
	$(GO) build -buildvcs=auto -tags "$(TAGS)" -o $(BIN) ./cmd/rljob

vet:
	$(GO) vet -tags "$(TAGS)" $(PKGS)

# go vet, every test, the kernels and trainer without cgo (the pure-Go
# kernel set, which must give the C sets' bits), the training digest with
# Go's own FMA paths off (as on a CPU without FMA), and the race detector
# on the parallel kernels at a small size.
test:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet -tags "$(TAGS)" $(PKGS)
	$(GO) test -tags "$(TAGS)" -timeout 20m $(PKGS)
	CGO_ENABLED=0 $(GO) test -short -count=1 ./kernels/... ./trainer/...
	GODEBUG=cpu.fma=off,cpu.avx=off,cpu.avx2=off CGO_ENABLED=0 $(GO) test -count=1 -run 'TestTrainBytesAcrossKernelSets' ./trainer/
	$(GO) test -tags "$(TAGS)" -race -short -count=1 ./kernels/... ./trainer/...

test-short:
	$(GO) test -tags "$(TAGS)" -short $(PKGS)

# The benchmarks docs/benchmarks.md quotes: lake writes vs DuckDB COPY,
# prompt_stats over 1M rollouts, training steps (shapes a, b, c), sampling
# (shapes b, c), the GEMM per kernel set, then bench-qwen (a whole GRPO
# step on the Qwen2.5-0.5B shape). One run each (-benchtime 1x after
# a warm-up inside each benchmark); `make bench-all` runs every benchmark of
# every package.
bench:
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'LakeWriteVsCopy|PromptStats1M' -benchtime 1x -timeout 60m ./sql/
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'TrainStep$$|Sample$$' -benchtime 3x -timeout 60m ./trainer/
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'TrainStepQwen' -benchtime 2x -timeout 60m ./trainer/
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'FMAPeak|BIGemm|Matmul$$|BF16Gemm' -benchtime 200ms ./kernels/
	RLJOB_BENCH_STEPS=10,1000,10000 $(GO) test -tags "$(TAGS)" -run '^$$' -bench 'StepOverhead' -benchtime 5x -timeout 60m ./jobs/
	RLJOB_BENCH_STEPS=10,1000,10000 $(GO) test -tags "$(TAGS)" -run '^$$' -bench 'SQLStartup' -benchtime 3x -timeout 60m ./sql/
	$(MAKE) bench-qwen

# bf16 against fp32 on the Qwen2.5-0.5B shape (4 of its 24 layers and the
# full lm_head unless RLJOB_BENCH_LAYERS says more), A/B interleaved in one
# process: training step, then decode at batch 8 and 32.
bench-bf16:
	RLJOB_BENCH_ROUNDS=$${RLJOB_BENCH_ROUNDS:-2} $(GO) test -tags "$(TAGS)" -run '^$$' -bench 'BF16(Train|Decode)Qwen' -benchtime 1x -timeout 60m ./trainer/

# examples/qwen/step.sh's GRPO step on the Qwen2.5-0.5B shape (8 prompts
# × 4 samples, 448 + 64 tokens, random stand-in, default settings), full
# fine-tuning then LoRA r = 16: step_seconds, step_tokens, checkpoint bytes
# and the peak RSS in KiB (/usr/bin/time, installed when missing); then
# decoding tokens/s at batch 8 and 32 on all 24 layers, fp32 and bf16.
# About 25 minutes on 2 cores; about 10 GB of memory.
bench-qwen: build
	@[ -x /usr/bin/time ] || (apt-get update && apt-get install -y time)
	WRAP="/usr/bin/time -f peak_rss_kib=%M" examples/qwen/step.sh
	WRAP="/usr/bin/time -f peak_rss_kib=%M" examples/qwen/step.sh --lora
	RLJOB_BENCH_LAYERS=24 RLJOB_BENCH_ROUNDS=1 $(GO) test -tags "$(TAGS)" -run '^$$' -bench 'BF16DecodeQwen' -benchtime 1x -timeout 60m ./trainer/

# PyTorch's CPU step beside ours on the Qwen2.5-0.5B shape (fp32, the same
# RL loss, AdamW, THREADS threads, default 2): installs Debian's
# python3-torch (1.13) when /usr/bin/python3 lacks it, then runs
# scripts/bench-torch.py and BenchmarkTrainStepQwen one after the other.
# Compare the GFLOP/cpu-s columns (the same FLOP count).
THREADS ?= 2
bench-torch:
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || (apt-get update && apt-get install -y python3-torch)
	THREADS=$(THREADS) /usr/bin/python3 scripts/bench-torch.py qwen0.5b
	GOMAXPROCS=$(THREADS) $(GO) test -tags "$(TAGS)" -run '^$$' -bench 'TrainStepQwen' -benchtime 2x -timeout 60m ./trainer/

bench-all:
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench . -benchtime 1x -timeout 120m $(PKGS)

fuzz:
	$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz FuzzSplit -fuzztime 60s ./jobs/script

demo: build
	sh examples/demo.sh

fmt:
	gofmt -w .

clean:
	rm -rf bin lake kernels/cuda/lib kernels/cuda/libhash_gen.go

# CUDA (docs/cuda.md). Nothing above needs it. `make build-cuda` installs
# Debian's nvidia-cuda-toolkit 11.8 and g++-11 when missing (root, apt),
# compiles kernels/cuda/csrc/*.cu with nvcc into kernels/cuda/lib/
# librljobcuda.a (sm_80, sm_90 and compute_90 PTX; -fmad=false: no FMA
# where the CPU kernels round twice), writes the library's hash into
# kernels/cuda/libhash_gen.go (so Go's build cache sees a rebuilt .a) and
# links bin/rljob-cuda with cudart and cuBLAS static.
NVCC      ?= nvcc
# g++-11 for Debian's nvcc 11.8; a newer nvcc (CUDA 12, 13) takes the default g++.
CUDA_CCBIN ?= $(shell command -v g++-11 >/dev/null 2>&1 && echo g++-11 || echo g++)
CUDA_DIR   = kernels/cuda
CUDA_LIB   = $(CUDA_DIR)/lib/librljobcuda.a
CUDA_LIBDL = $(CUDA_DIR)/lib/librljobcuda_dl.a
CU_SRC     = $(wildcard $(CUDA_DIR)/csrc/*.cu)
CU_HDR     = $(wildcard $(CUDA_DIR)/csrc/*.cuh $(CUDA_DIR)/csrc/*.h) $(CUDA_DIR)/internal/gomathcheck/gomath.h
CU_OBJ     = $(patsubst $(CUDA_DIR)/csrc/%.cu,$(CUDA_DIR)/lib/%.o,$(filter-out %/gemm_cublas.cu,$(CU_SRC)))
NVCCFLAGS ?= -ccbin $(CUDA_CCBIN) -std=c++17 -O3 -fmad=false -Xcompiler -fPIC \
	-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
CUDA_TAGS  = $(TAGS) cuda

cuda-toolkit:
	@sh scripts/cuda-toolkit.sh

$(CUDA_DIR)/lib/%.o: $(CUDA_DIR)/csrc/%.cu $(CU_HDR)
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_DIR)/lib/gemm_cublas_dl.o: $(CUDA_DIR)/csrc/gemm_cublas.cu $(CU_HDR)
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -DRJ_CUBLAS_DL -c $< -o $@

# librljobcuda.a calls cuBLAS linked statically (bin/rljob-cuda);
# librljobcuda_dl.a loads libcublas.so at run time (build tag cuda_dlcublas:
# a test binary small enough to copy to a GPU machine without Go).
$(CUDA_LIB): $(CU_OBJ) $(CUDA_DIR)/lib/gemm_cublas.o
	rm -f $@
	ar rcs $@ $^

$(CUDA_LIBDL): $(CU_OBJ) $(CUDA_DIR)/lib/gemm_cublas_dl.o
	rm -f $@
	ar rcs $@ $^

cuda-lib: cuda-toolkit
	$(MAKE) $(CUDA_LIB) $(CUDA_LIBDL)
	sh scripts/cuda-libhash.sh $(CUDA_DIR)/libhash_gen.go $$(ls $(CUDA_DIR)/lib/*.a)

build-cuda: cuda-lib
	CGO_ENABLED=1 $(GO) build -buildvcs=auto -tags "$(CUDA_TAGS)" -o bin/rljob-cuda ./cmd/rljob

# The CUDA conformance tests (they skip without a GPU; RLJOB_REQUIRE_CUDA=1
# makes a skip a failure) and the GPU benchmarks.
test-cuda: cuda-lib
	$(GO) test -tags "$(CUDA_TAGS)" -count=1 -v ./kernels/cuda/
	$(GO) test -tags "$(CUDA_TAGS)" -count=1 -v -run 'TestUseDevice|TestCUDA' ./trainer/
	$(GO) test -tags "$(CUDA_TAGS)" -count=1 -v -run 'TestDevice|TestCrashSafetyCUDA' ./cmd/rljob/

bench-cuda: cuda-lib
	$(GO) test -tags "$(CUDA_TAGS)" -run '^$$' -bench 'CUDAGemm|CUDASample' -benchtime 20x -timeout 20m ./kernels/cuda/
	$(GO) test -tags "$(CUDA_TAGS)" -run '^$$' -bench 'CUDAForwardGemms' -benchtime 2x -timeout 20m ./kernels/cuda/
	$(GO) test -tags "$(CUDA_TAGS)" -run '^$$' -bench 'CUDATrainStepQwen|CUDASampleQwen' -benchtime 1x -timeout 20m ./trainer/

# The CUDA test binaries, cuBLAS loaded at run time, stripped: the
# kernels' (about 5 MB), the trainer backend's (about 7 MB) and the CLI's
# (rljob with DuckDB, gzipped: bin/cuda-cli.test.gz). They run on a GPU
# machine with a driver but without Go or nvcc (scripts/gpu-check.sh uses
# them there).
cuda-test-bin: cuda-lib
	$(GO) test -c -tags "$(CUDA_TAGS) cuda_dlcublas" -ldflags=-s -o bin/cuda-kernels.test ./kernels/cuda/
	$(GO) test -c -tags "$(CUDA_TAGS) cuda_dlcublas" -ldflags=-s -o bin/cuda-trainer.test ./trainer/
	$(GO) test -c -tags "$(CUDA_TAGS) cuda_dlcublas" -ldflags=-s -o bin/cuda-cli.test ./cmd/rljob/
	gzip -f -6 bin/cuda-cli.test

# The CUDA emulator (docs/cuda.md#the-emulator): the same .cu files, their
# kernel<<<grid, block>>>(...) launches rewritten to C++ calls, compiled by
# g++ against kernels/cuda/emu (each CUDA thread a fiber on the CPU) into
# lib/librljobcuda_emu.a; the build tag cudaemu links it instead of
# cudart and cuBLAS. The CUDA tests then run every kernel, with
# RLJOB_REQUIRE_CUDA=1, on a machine without a GPU (and without nvcc).
EMU_CXX    ?= g++
EMU_DIR    = $(CUDA_DIR)/emu
EMU_LIB    = $(CUDA_DIR)/lib/librljobcuda_emu.a
EMU_HDR    = $(wildcard $(EMU_DIR)/*.h $(EMU_DIR)/cub/*.cuh)
EMU_RT     = $(CUDA_DIR)/lib/emu/emu.o $(CUDA_DIR)/lib/emu/emu_runtime.o
EMU_OBJ    = $(patsubst $(CUDA_DIR)/csrc/%.cu,$(CUDA_DIR)/lib/emu/%.o,$(CU_SRC)) $(EMU_RT)
EMU_CXXFLAGS ?= -std=c++17 -O1 -g -fPIC -ffp-contract=off -fno-strict-aliasing -fsanitize=address -fno-omit-frame-pointer \
	-Wall -Wno-unused-function -Wno-sign-compare
EMU_TAGS   = $(CUDA_TAGS) cudaemu

$(CUDA_DIR)/lib/emu/%.cpp: $(CUDA_DIR)/csrc/%.cu
	@mkdir -p $(@D)
	sed 's/\([A-Za-z_][A-Za-z0-9_]*\)<<<\(.*\)>>>(/rjemu::launcher(\1, "\1", \2)(/' $< >$@

$(CUDA_DIR)/lib/emu/emu_test.cpp: $(EMU_DIR)/emu_test.cu
	@mkdir -p $(@D)
	sed 's/\([A-Za-z_][A-Za-z0-9_]*\)<<<\(.*\)>>>(/rjemu::launcher(\1, "\1", \2)(/' $< >$@

$(CUDA_DIR)/lib/emu/emu_test: $(CUDA_DIR)/lib/emu/emu_test.o $(EMU_RT)
	$(EMU_CXX) -fsanitize=address -o $@ $^ -lm -lpthread

$(CUDA_DIR)/lib/emu/%.o: $(CUDA_DIR)/lib/emu/%.cpp $(CU_HDR) $(EMU_HDR)
	$(EMU_CXX) $(EMU_CXXFLAGS) -I$(EMU_DIR) -I$(CUDA_DIR)/csrc -c $< -o $@

$(CUDA_DIR)/lib/emu/emu.o: $(EMU_DIR)/emu.cpp $(EMU_HDR)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -I$(EMU_DIR) -c $< -o $@

$(CUDA_DIR)/lib/emu/emu_runtime.o: $(EMU_DIR)/emu_runtime.cpp $(EMU_HDR)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -I$(EMU_DIR) -c $< -o $@

$(EMU_LIB): $(EMU_OBJ)
	rm -f $@
	ar rcs $@ $^

cuda-emu-lib:
	@command -v $(EMU_CXX) >/dev/null 2>&1 || { echo "make: installing g++ for the CUDA emulator (apt)" >&2; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null; }
	$(MAKE) $(EMU_LIB)
	sh scripts/cuda-libhash.sh $(CUDA_DIR)/libhash_gen.go $$(ls $(CUDA_DIR)/lib/*.a)

# The emulator's own tests, then the CUDA tests on it, under
# AddressSanitizer (a kernel's access outside its buffers stops the test
# naming the kernel, block and thread): none may skip.
EMU_TEST   = ASAN_OPTIONS=detect_leaks=0 RLJOB_REQUIRE_CUDA=1 $(GO) test -asan -tags "$(EMU_TAGS)" -count=1 -timeout 30m
test-cuda-emu: cuda-emu-lib $(CUDA_DIR)/lib/emu/emu_test
	ASAN_OPTIONS=detect_leaks=0 $(CUDA_DIR)/lib/emu/emu_test
	sh scripts/cuda-shared-mem.sh $(filter-out $(EMU_RT),$(EMU_OBJ))
	$(EMU_TEST) ./kernels/cuda/
	RLJOB_CUDAEMU_ORDER=reverse $(EMU_TEST) ./kernels/cuda/
	RLJOB_CUDA_GEMM_TILE=128 $(EMU_TEST) ./kernels/cuda/
	RLJOB_CUDA_GEMM_TILE=128 $(EMU_TEST) -run TestCUDABackendConformance ./trainer/
	$(EMU_TEST) -run 'TestUseDevice|TestCUDA' ./trainer/
	$(EMU_TEST) -run 'TestDevice|TestCrashSafetyCUDA' ./cmd/rljob/

# Everything on a GPU machine in one command (scripts/gpu-check.sh).
gpu-check:
	sh scripts/gpu-check.sh

# Headless Chromium (Debian's chromium) for the report test
# (report.TestChromiumRendersReport installs it the same way when missing)
# and for the README's report screenshot.
.PHONY: chromium
chromium:
	@sh scripts/chromium.sh

# rljob slurm on a real single-node Slurm (munged, slurmctld, slurmd on
# localhost, installed with apt-get when missing, stopped by their PIDs):
# the arith pipeline with 2 shards equals an unsharded run, and after a
# scancel of one array task a resubmit finishes it. Needs root. About 1 min.
.PHONY: test-slurm
test-slurm:
	sh scripts/test-slurm.sh

# The findings of examples/recipes (examples/recipes/findings.csv): every arm
# on the arith task, 8 seeds, per-seed results in examples/recipes/out/
# perseed.csv, verdicts by the stated rule in examples/recipes/out/findings.md,
# charts in examples/recipes/out/charts/ (examples/recipes/README.md
# "## Findings": what it runs, how long it takes). compare-quick: 2 seeds,
# 4 arms, half the budget; its findings are "inconclusive (n < 8)" by the rule.
# compare-readme: the README's findings block from the committed run.
.PHONY: compare compare-quick compare-readme compare-tools
compare-tools:
	$(GO) build -tags "$(TAGS)" -o bin/recipe-chart ./examples/recipes/chart
	$(GO) build -o bin/recipe-verdict ./examples/recipes/verdict
compare: build compare-tools
	CHART_BIN=bin/recipe-chart VERDICT_BIN=bin/recipe-verdict sh examples/recipes/compare.sh
compare-quick: build compare-tools
	SEEDS="1 2" ARMS="baseline nsr psr sft_equal" LARGEK="sft baseline nsr psr" BUDGET=2048 TOOLS=0 \
	  OUT=examples/recipes/out-quick CHART_BIN=bin/recipe-chart VERDICT_BIN=bin/recipe-verdict sh examples/recipes/compare.sh
compare-readme:
	$(GO) run ./examples/recipes/verdict -perseed examples/recipes/results/perseed.csv -readme examples/recipes/README.md
