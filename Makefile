# ufuse top-level Makefile: a thin wrapper over CMake/CTest.
# Every target that builds installs the Debian packages it needs first
# (scripts/deps.sh: one dpkg-query when they are all there), so any of them
# works as the first command on a new machine.
#   make        release build into build/ (CLI at build/ufuse)
#   make check  build, run every test (plain,
#               ASan+UBSan, and the TSan-labelled tests under TSan)
#   make demo   copy a tree in and out of the built-in server
#   make bench  benchmarks (QUICK=1 for a smoke run)
#   make soak   long runs (fsx, fault matrix, 16 threads under ASan and
#               TSan, ufuse run's random kills); regenerates docs/reliability.md
#   make fuzz   the libFuzzer targets for FUZZ_TIME seconds (default 1800) with
#               FUZZ_JOBS processes (default 2); figures into docs/reliability.md
#   make install [PREFIX=/usr/local] [DESTDIR=DIR]   library, CLI, server, man pages
SHELL   := /bin/bash
JOBS    ?= $(shell nproc)
CMAKE   ?= cmake
BUILD   ?= build
PREFIX  ?= /usr/local

FUZZ_TIME ?= 1800
FUZZ_JOBS ?= 2

.PHONY: all deps deps-build check demo bench soak fuzz clean install tidy

all: deps-build
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

# deps-build: what building needs (a few MB), a prerequisite of every
# target that builds.  deps: that and what the tests and benchmarks run
# (sanitizer runtimes, real FUSE servers, ...: much more); check depends on
# it, bench and soak run it in their recipes, after their build, so that
# two apt-get never run at once under -j.
deps-build:
	@./scripts/deps.sh build
deps:
	@./scripts/deps.sh check

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
	@./scripts/deps.sh check
	@if [ -x $(BUILD)/ufuse-bench ]; then QUICK=$(QUICK) ./scripts/bench.sh $(BUILD); \
	 else echo "bench: no benchmarks yet (issue 4)"; fi
	@if [ "$(QUICK)" != 1 ]; then ./scripts/bench-run.sh $(BUILD); fi

# The long runs in $(SOAK_BUILD), -asan and -tsan (their own build trees by
# default, so that `make check` may run meanwhile), then docs/reliability.md.
SOAK_BUILD ?= build-soak
soak: deps
	@$(CMAKE) -S . -B $(SOAK_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(SOAK_BUILD) -j $(JOBS)
	@$(CMAKE) -S . -B $(SOAK_BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	    -DUFUSE_SANITIZE=address,undefined >/dev/null
	@$(CMAKE) --build $(SOAK_BUILD)-asan -j $(JOBS)
	@$(CMAKE) -S . -B $(SOAK_BUILD)-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	    -DUFUSE_SANITIZE=thread >/dev/null
	@$(CMAKE) --build $(SOAK_BUILD)-tsan -j $(JOBS)
	@./scripts/soak.sh $(SOAK_BUILD)

# An optimized clang build of the fuzz targets only (ASan+UBSan, asserts on).
fuzz: deps
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build build-fuzz -j $(JOBS) --target fuzz-reply fuzz-session
	@FUZZ_TIME=$(FUZZ_TIME) FUZZ_JOBS=$(FUZZ_JOBS) ./scripts/fuzz.sh build-fuzz

# make install [PREFIX=/usr/local] [DESTDIR=/staging]: the prefix is
# configured, not only given to `cmake --install`, because the client has it
# compiled in (where to find ufuse-memfs and the libfuse-2 hook), as do
# ufuse.pc and GNUInstallDirs' libdir (lib/<multiarch> under /usr).
install: deps-build
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)
	@DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD)

# clang-tidy's bug-prone checks (swappable parameters and reserved names
# are style, not bugs, for a C library of this kind).
TIDY_CHECKS = -*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier
tidy: all
	@./scripts/deps.sh tidy
	@clang-tidy -p $(BUILD) --quiet --checks='$(TIDY_CHECKS)' $$(git ls-files 'src/*.c' 'tools/*.c') 2>&1 \
	    | grep -E '^/.*(warning|error):' ; test $${PIPESTATUS[0]} -eq 0

clean:
	rm -rf build build-asan build-tsan build-fuzz build-soak build-soak-asan build-soak-tsan
