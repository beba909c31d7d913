# ufuse top-level Makefile: a thin wrapper over CMake/CTest.
#   make        release build into build/ (CLI at build/ufuse)
#   make check  install missing packages, build, run every test (plain,
#               ASan+UBSan, and the TSan-labelled tests under TSan)
#   make demo   copy a tree in and out of the built-in server
#   make bench  benchmarks (QUICK=1 for a smoke run)
#   make soak   long runs (fsx, fault matrix, 16 threads under ASan and
#               TSan); regenerates docs/reliability.md
#   make install [PREFIX=/usr/local] [DESTDIR=DIR]   library, CLI, server, man pages
SHELL   := /bin/bash
JOBS    ?= $(shell nproc)
CMAKE   ?= cmake
BUILD   ?= build
PREFIX  ?= /usr/local

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
	@if [ -x $(BUILD)/ufuse-bench ]; then QUICK=$(QUICK) ./scripts/bench.sh $(BUILD); \
	 else echo "bench: no benchmarks yet (issue 4)"; fi

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

# make install [PREFIX=/usr/local] [DESTDIR=/staging]: the prefix is
# configured, not only given to `cmake --install`, because the client has it
# compiled in (where to find ufuse-memfs and the libfuse-2 hook), as do
# ufuse.pc and GNUInstallDirs' libdir (lib/<multiarch> under /usr).
install:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)
	@DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD)

# clang-tidy's bug-prone checks (swappable parameters and reserved names
# are style, not bugs, for a C library of this kind).
TIDY_CHECKS = -*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier
tidy: all
	@clang-tidy -p $(BUILD) --quiet --checks='$(TIDY_CHECKS)' $$(git ls-files 'src/*.c' 'tools/*.c') 2>&1 \
	    | grep -E '^/.*(warning|error):' ; test $${PIPESTATUS[0]} -eq 0

clean:
	rm -rf build build-asan build-tsan build-soak build-soak-asan build-soak-tsan
