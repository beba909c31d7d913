# ufuse top-level Makefile: a thin wrapper over CMake/CTest.
#   make        release build into build/ (CLI at build/ufuse)
#   make check  install missing packages, build, run every test (plain,
#               ASan+UBSan, and the TSan-labelled tests under TSan)
#   make demo   copy a tree in and out of the built-in server
#   make bench  benchmarks (QUICK=1 for a smoke run)
#   make soak   long randomized runs
SHELL   := /bin/bash
JOBS    ?= $(shell nproc)
CMAKE   ?= cmake
BUILD   ?= build

.PHONY: all deps check demo bench soak clean install tidy

all:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

deps:
	@./scripts/deps.sh

check: deps
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j $(JOBS)
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	    -DUFUSE_SANITIZE=address,undefined >/dev/null
	@$(CMAKE) --build build-asan -j $(JOBS)
	@$(CMAKE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	    -DUFUSE_SANITIZE=thread >/dev/null
	@$(CMAKE) --build build-tsan -j $(JOBS)
	@./scripts/check.sh

demo: all
	@./scripts/demo.sh $(BUILD)

bench: all
	@if [ -x $(BUILD)/ufuse-bench ]; then ./scripts/bench.sh $(BUILD); \
	 else echo "bench: no benchmarks yet (issue 4)"; fi

soak: all
	@UFUSE_SOAK=1 ctest --test-dir $(BUILD) -L soak --output-on-failure

install: all
	@$(CMAKE) --install $(BUILD) --prefix $(or $(PREFIX),/usr/local)

# clang-tidy's bug-prone checks (swappable parameters and reserved names
# are style, not bugs, for a C library of this kind).
TIDY_CHECKS = -*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier
tidy: all
	@clang-tidy -p $(BUILD) --quiet --checks='$(TIDY_CHECKS)' $$(git ls-files 'src/*.c' 'tools/*.c') 2>&1 \
	    | grep -E '^/.*(warning|error):' ; test $${PIPESTATUS[0]} -eq 0

clean:
	rm -rf build build-asan build-tsan
