# xenolith: top-level entry points. The work is done by the host tool (crate `tools`,
# binary `xenolith-tools`); run `make help` for the list.

CARGO ?= cargo
TOOLS := $(CARGO) run --release -q -p tools --
SCENARIO ?=
FUZZ_SECONDS ?= 600
FUZZ_RUNS ?=
HOST_CRATES := -p guest-abi -p p2m -p domcfg -p hypercalls -p platform -p xenstore -p loader -p netback -p netswitch -p ticks -p sched -p tests -p tools
BARE_CRATES := -p kernel -p test-guest
BARE_TARGET := x86_64-unknown-none

.PHONY: all help setup build iso run test fuzz bench clippy fmt clean

all: build

help:
	@echo "make setup    check for (as root: install) bochs, grub, xorriso, mtools, rust target"
	@echo "make build    build the hypervisor and the test guest"
	@echo "make iso      build/<scenario>/xenolith.iso (SCENARIO=name, default xen-identity)"
	@echo "make run      boot a scenario with its serial console on the terminal (SCENARIO=name)"
	@echo "make test     host tests and every scenario; last line 'xenolith: N passed, M failed'"
	@echo "make fuzz     each fuzz target for FUZZ_SECONDS (default 600) or FUZZ_RUNS executions;"
	@echo "              prints 'fuzz <target>: N execs, C crashes', fails on a crash"
	@echo "make bench    benchmarks"
	@echo "make clippy   clippy -D warnings on host and freestanding crates"
	@echo "make fmt      rustfmt everything"
	@echo "make clean    remove target/ and build/"

setup:
	$(TOOLS) setup

build:
	$(TOOLS) build

iso:
	$(TOOLS) iso $(SCENARIO)

run:
	$(TOOLS) run $(SCENARIO)

test:
	$(TOOLS) test

fuzz:
	$(TOOLS) fuzz $(if $(FUZZ_RUNS),--runs $(FUZZ_RUNS),--seconds $(FUZZ_SECONDS))

bench:
	$(TOOLS) bench

clippy:
	$(CARGO) clippy $(HOST_CRATES) --all-targets -- -D warnings
	$(CARGO) clippy $(BARE_CRATES) --target $(BARE_TARGET) -- -D warnings
	cd fuzz && $(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
	cd fuzz && $(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf build
