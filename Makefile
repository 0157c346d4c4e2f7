# tinyds — a thin wrapper over CMake.
#   make          build (Release, -O3 -march=native) into build/
#   make test     install missing packages, build, run every test (+ PyTorch golden state, + ASan/UBSan pass)
#   make demo     install missing packages, build, train the toy model end to end and print its accuracy
#   make bench    training throughput vs the machine's GEMM peak and the PyTorch reference
#   make build-tool  build only build/tinyds, quietly (what demo and bench need)
#   make cuda     the native build into build-cuda/: tinyds linked with the nvcc-built kernels (`--device cuda` on a
#                 GPU), the native kernel and whole-step tests (skipped without a GPU); needs nvcc
#   make debug    -O0 -g, OpenMP off, into build-debug/ (for stepping with gdb, CUDA kernels included: see
#                 kernels/README.md; no nvcc there, the kernels run under the CPU emulation)
#   make notebooks  rebuild notebooks/*.ipynb from notebooks/src/ and execute them in place (commit the outputs)
#   make fuzz     libFuzzer + ASan/UBSan on the input readers, FUZZ_SECONDS each (tests/fuzz/; clang-14)
#   make deps     install missing Debian packages with apt-get
#   make clean

# No "make[n]: Entering directory" lines from the sub-makes that cmake --build runs.
MAKEFLAGS += --no-print-directory

JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
BUILD    ?= build
CMAKE_FLAGS ?=

# Debian packages the build, the tests and the PyTorch reference need.
DEPS := cmake make g++ libeigen3-dev doctest-dev nlohmann-json3-dev \
        python3 python3-numpy python3-torch libopenblas0-pthread \
        pybind11-dev python3-dev jupyter-nbconvert python3-ipykernel python3-matplotlib clang-14 libclang-rt-14-dev

.PHONY: all build build-tool test demo bench cuda debug deps clean unit asan golden notebooks fuzz fuzz-build

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Only the tinyds command, for demo and bench: the compiler's output is shown only when the build fails.
build-tool:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@[ -x $(BUILD)/tinyds ] || echo "make: building $(BUILD)/tinyds (a first build takes a few minutes)"
	@log=$$(mktemp); \
	if cmake --build $(BUILD) -j $(JOBS) --target tinyds >$$log 2>&1; then rm -f $$log; \
	else cat $$log; rm -f $$log; echo "make: building $(BUILD)/tinyds failed (the compiler's output is above)"; exit 1; fi

# Installs only what is missing; says what it installs; without root (or sudo) prints the command and fails.
deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "make deps: installing missing Debian packages:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; \
	else echo "make deps: not root and no sudo; run as root:"; \
	     echo "  apt-get update && apt-get install -y$$missing"; exit 1; fi; \
	if [ -z "$$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then \
	  $$SUDO apt-get update -qq || exit 1; fi; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || { echo "make deps: apt-get install failed for:$$missing"; exit 1; }; \
	echo "make deps: installed$$missing"

# Every unit test, the whole-model gradient check, the PyTorch golden state, then the unit tests once more
# under AddressSanitizer + UndefinedBehaviorSanitizer in a separate build folder (the nvcc compile check runs in
# the first build only).
# OMP_WAIT_POLICY=passive: OpenMP threads sleep instead of spinning while they wait; the CUDA emulation's many
# small launches (tests/device/) ran ~20x slower with spinning threads on a busy 2-core machine. Timings belong to
# `make bench`, which keeps the default.
test: deps build
	@cd $(BUILD) && OMP_WAIT_POLICY=passive ctest --output-on-failure --timeout 900
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=3

asan:
	@echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) =="
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTINYDS_SANITIZE=ON -DTINYDS_GOLDEN=OFF \
	       -DTINYDS_CUDA=OFF -DTINYDS_PYTHON=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
	@cmake --build build-asan -j $(JOBS) --target tinyds_tests tinyds tinyds_gdb_step_example
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 OMP_WAIT_POLICY=passive \
	    ctest --output-on-failure --timeout 900

# Every notebook rebuilt from its cell file and executed in place with Debian's jupyter-nbconvert and python3 kernel,
# against the module in $(BUILD)/python. The CTest tests notebook_* execute them again and fail on a stale notebook.
notebooks: deps build
	@/usr/bin/python3 notebooks/build.py
	@for nb in notebooks/[0-9]*.ipynb; do \
	  echo "== $$nb"; start=$$(date +%s); \
	  PYTHONPATH=$(CURDIR)/$(BUILD)/python TINYDS_EXE=$(CURDIR)/$(BUILD)/tinyds OMP_NUM_THREADS=1 \
	    /usr/bin/python3 -m nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=240 --ExecutePreprocessor.kernel_name=python3 $$nb || exit 1; \
	  echo "   $$(( $$(date +%s) - start )) s"; \
	done

demo: deps build-tool
	@$(BUILD)/tinyds demo

bench: deps build-tool
	@$(BUILD)/tinyds bench

.SECONDEXPANSION:
# libFuzzer targets (tests/fuzz/*_fuzz.cpp): the safetensors reader, the GSM8K JSONL reader, the tokenizer and the
# option parser, each built with only the sources it needs and run for FUZZ_SECONDS from its seed corpus
# (tests/fuzz/corpus/<name>/; what it finds new is kept in build-fuzz/corpus/<name>/). A crash stops `make fuzz`
# with the input that caused it saved as build-fuzz/crash-*. `make test` runs each for a few seconds.
FUZZ_SECONDS ?= 60
FUZZ_CXX     ?= clang++-14
FUZZ_FLAGS   := -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -I. -isystem /usr/include/eigen3
FUZZ_NAMES   := safetensors gsm8k tokenizer options
fuzz_src_safetensors := tinyds/train/safetensors.cpp
fuzz_src_gsm8k       := tinyds/data/gsm8k.cpp tinyds/data/gsm8k_text.cpp tinyds/data/problem.cpp tinyds/data/tokenizer.cpp
fuzz_src_tokenizer   := tinyds/data/tokenizer.cpp
fuzz_src_options     := tinyds/cli/args.cpp tinyds/cli/config_options.cpp tinyds/model/config.cpp \
                        tinyds/model/params.cpp

build-fuzz/%_fuzz: tests/fuzz/%_fuzz.cpp $$(fuzz_src_$$*) $$(wildcard tinyds/*/*.h)
	@mkdir -p build-fuzz
	$(FUZZ_CXX) $(FUZZ_FLAGS) $< $(fuzz_src_$*) -o $@

fuzz-build: $(FUZZ_NAMES:%=build-fuzz/%_fuzz)

fuzz: fuzz-build
	@for t in $(FUZZ_NAMES); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "== fuzz $$t: $(FUZZ_SECONDS) s =="; \
	  (cd build-fuzz && ./$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	     -print_final_stats=1 corpus/$$t ../tests/fuzz/corpus/$$t >/dev/null 2>$$t.log) \
	    || { tail -40 build-fuzz/$$t.log; echo "make fuzz: $$t failed (log: build-fuzz/$$t.log)"; exit 1; }; \
	  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" build-fuzz/$$t.log | tail -2; \
	done

# The native build (CMake option TINYDS_NATIVE_CUDA): build-cuda/tinyds runs `--device cuda` on the GPU
# (`build-cuda/tinyds bench --device cuda`); tinyds_kernel_tests_native and tinyds_device_tests_native check the
# kernels and the whole training step on it against the CPU (`cd build-cuda && ctest -R native`).
cuda:
	@cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DTINYDS_NATIVE_CUDA=ON -DTINYDS_GOLDEN=OFF \
	       -DTINYDS_PYTHON=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-cuda -j $(JOBS) --target tinyds tinyds_kernel_tests_native tinyds_device_tests_native

debug:
	@cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DTINYDS_OPENMP=OFF -DTINYDS_NATIVE=OFF -DTINYDS_CUDA=OFF >/dev/null
	@cmake --build build-debug -j $(JOBS)

clean:
	rm -rf build build-asan build-cuda build-debug build-fuzz
