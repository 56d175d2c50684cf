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

.PHONY: all help setup build guest-image iso run test fuzz bench clippy fmt clean

all: build

help:
	@echo "make setup    check for (as root: install) bochs, grub, xorriso, mtools, rust target"
	@echo "make build    build the hypervisor and the test guest"
	@echo "make guest-image  Debian's kernel and the initramfs in build/guest/"
	@echo "make iso      build/<scenario>/xenolith.iso (SCENARIO=name), or with CONFIG=\"a.cfg b.cfg\""
	@echo "              an ISO of your own domains for any machine (ISO=file, default build/user.iso)"
	@echo "make run      boot Debian's kernel to a shell on hvc0, typed into from the terminal"
	@echo "              (Ctrl-A three times: next domain; Ctrl-]: stop); SCENARIO=name for a"
	@echo "              scenario, CONFIG=\"a.cfg b.cfg\" for your own xl.cfg domains"
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

guest-image:
	$(TOOLS) guest-image

iso:
	$(TOOLS) iso $(if $(CONFIG),-o $(or $(ISO),build/user.iso) $(CONFIG),$(SCENARIO))

run:
	$(TOOLS) run $(if $(CONFIG),$(CONFIG),$(SCENARIO))

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
