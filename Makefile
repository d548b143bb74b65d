# FlexSC-RS: exception-less system calls for Linux 6.12, built and booted in QEMU.
#
#   make bench         build everything, boot the kernel in QEMU, run the benchmark
#   make test          every test: host-side crates, the patch series, the style
#                      checks, and the suites inside the booted FlexSC kernel
#
# Building:
#   make deps          install the packages (apt, pinned) and bindgen (cargo)
#   make tree          unpack Debian's linux-source-6.12 into linux/, apply patches/
#   make config        configure build/kernel from configs/flexsc.config
#   make kernel        build build/kernel/arch/x86/boot/bzImage
#   make headers       the uapi headers as users get them (build/headers)
#   make libflexsc     the C library (build/libflexsc-install: lib, header, .pc, man)
#   make install       libflexsc into PREFIX (/usr/local; DESTDIR= for staging)
#   make kselftest     the series' kselftest (tools/testing/selftests/flexsc), static
#   make flexsc-run    build/flexsc-run: run unmodified programs' calls through FlexSC
#   make initramfs     the busybox initramfs with the suites and the tools
#   make deb           Debian kernel packages (DEB_BASE_CONFIG=<config> for real hardware)
# Running:
#   make vm-test       only the suites in the booted kernel (FLEXSC_TEST_FILTER=...)
#   make vm-run CMD='...'  run one command line in the kernel with this
#                      machine's own userland (9p root, read-only); its status
#   make shell         the same environment, an interactive bash
#   make shell-initramfs  the busybox initramfs's shell on the console
#   make server-bench  the HTTP server six ways (three on hyper) under one load
#   make app-bench     Debian's nginx under wrk, natively and under flexsc-run
# Checking:
#   make host-test     the userspace crates' tests, the log judge, the semantics table
#   make check-patches fail when patches/ and flexsc/ disagree
#   make lint          checkpatch on the series, rustfmtcheck and clippy on flexsc/
#   make debug-test    the suite and a long stress run on a KASAN/lockdep/kmemleak kernel
#   make profile       where an entry's time goes (function_graph) against io_uring's
#   make fresh-check   make test in a clean Debian 12 root (debootstrap; needs root)
# Maintaining:
#   make patches       export the commits in linux/ (and flexsc/) back into patches/
#   make clean         remove the kernel build and the initramfs
#   make distclean     remove linux/ and build/ too
#
# VM settings (environment): FLEXSC_VM_CPUS (2), FLEXSC_VM_MEM (MiB, 1024),
# FLEXSC_ACCEL (kvm or tcg; detected), FLEXSC_VM_TIMEOUT (s, 1200),
# FLEXSC_TEST_FILTER (comma-separated test names, -name excludes).
# KERNEL=<bzImage> boots vm-run, shell and app-bench on that kernel, unbuilt.

SHELL := /bin/bash
.DEFAULT_GOAL := help
TOP := $(CURDIR)

# ---------------------------------------------------------------------------
# Pinned inputs: the series is written against exactly this kernel source.
LINUX_SOURCE_VERSION := 6.12.117-1~deb12u1
RUSTC_WEB_VERSION := 1.96.0+dfsg1-1~deb12u2
BINDGEN_VERSION := 0.73.2

APT_PACKAGES := \
	linux-source-6.12=$(LINUX_SOURCE_VERSION) \
	rustc-web=$(RUSTC_WEB_VERSION) rust-web-src=$(RUSTC_WEB_VERSION) \
	cargo-web=$(RUSTC_WEB_VERSION) \
	clang lld llvm libclang-dev build-essential flex bison bc kmod \
	libelf-dev libssl-dev cpio xz-utils dwarves rsync git python3 \
	qemu-system-x86 busybox-static \
	debhelper dpkg-dev fakeroot librsvg2-bin \
	rust-web-clippy=$(RUSTC_WEB_VERSION) rustfmt-web=$(RUSTC_WEB_VERSION) \
	python3-ply python3-git \
	nginx wrk curl \
	pkg-config groff-base

# ---------------------------------------------------------------------------
BUILD := $(TOP)/build
KBUILD := $(BUILD)/kernel
TOOLS := $(BUILD)/tools
BINDGEN := $(TOOLS)/bin/bindgen
BZIMAGE := $(KBUILD)/arch/x86/boot/bzImage
INITRAMFS := $(BUILD)/initramfs.cpio
JOBS ?= $(shell nproc)

# Every kernel make gets the same toolchain: LLVM for C, Debian's rustc (it
# ships the matching rust-src), bindgen from crates.io.
KMAKE := $(MAKE) -C $(TOP)/linux O=$(KBUILD) LLVM=1 \
	RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=$(BINDGEN)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian's cargo and rustc (cargo-web, rustc-web) for everything: the kernel,
# bindgen and the userspace crates. Never rustup's, even where ~/.cargo/bin
# comes first on PATH: a fresh Debian 12 has none, and one toolchain is what
# the series is verified with.
CARGO ?= env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc /usr/bin/cargo
# Static userspace binaries for the initramfs.
TARGET := x86_64-unknown-linux-gnu
STATIC_RUSTFLAGS := -C target-feature=+crt-static
GUEST_BIN := $(TOP)/target/$(TARGET)/release

.PHONY: help deps tree config kernel headers libflexsc install c-example userspace initramfs \
	debug-config debug-kernel debug-test server-bench vm-test test host-test \
	check-patches patches shell bench deb clean distclean fresh-check lint kselftest \
	vm-run shell-initramfs app-bench profile-kernel profile flexsc-run

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------------------
# Installs. Idempotent: apt runs only when a package is missing or at another
# version, cargo only when bindgen is not there.
DEPS_STAMP := $(BUILD)/.deps-$(shell echo '$(APT_PACKAGES) $(BINDGEN_VERSION)' | sha1sum | cut -c1-12)

deps: $(DEPS_STAMP)

$(DEPS_STAMP):
	@mkdir -p $(BUILD)
	@missing=$$(for p in $(APT_PACKAGES); do \
		name=$${p%%=*}; want=$${p#*=}; \
		have=$$(dpkg-query -W -f='$${Status} $${Version}' $$name 2>/dev/null); \
		case "$$have" in "install ok installed"*) ;; *) echo $$p; continue;; esac; \
		[ "$$name" = "$$p" ] || [ "$${have##* }" = "$$want" ] || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo ">> apt-get install $$missing"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
			--allow-downgrades $$missing; \
	fi
	@if ! $(BINDGEN) --version 2>/dev/null | grep -qx 'bindgen $(BINDGEN_VERSION)'; then \
		echo ">> cargo install bindgen-cli $(BINDGEN_VERSION) (a few minutes, once)"; \
		$(CARGO) install --locked bindgen-cli --version $(BINDGEN_VERSION) --root $(TOOLS); \
	fi
	@touch $@

# ---------------------------------------------------------------------------
# The kernel: pristine tree + series + flexsc/, configured from configs/.
tree: deps
	@scripts/prepare-tree.sh

config: tree
	@scripts/configure.sh "$(KMAKE)" $(KBUILD) configs/flexsc.config

kernel: config
	@echo ">> building the kernel (first build: about 12-15 minutes on 2 cores)"
	+@$(KMAKE) -j$(JOBS) bzImage
	@echo ">> $(BZIMAGE)"

# Refuse a series that no longer matches flexsc/ (the subsystem is kept in
# one place, flexsc/; patches/ is exported from linux/ by `make patches`).
check-patches: tree
	@scripts/check-patches.sh

patches: tree
	@scripts/export-patches.sh

# Debian packages. By default of the QEMU kernel; for real hardware give a
# full base configuration, e.g. Debian's (package linux-config-6.12):
#   make deb DEB_BASE_CONFIG=/usr/src/linux-config-6.12/config.amd64_none_amd64.xz
# which is merged with configs/flexsc.config and built in build/kernel-deb.
DEB_BASE_CONFIG ?=
ifeq ($(DEB_BASE_CONFIG),)
deb: config
	+$(KMAKE) -j$(JOBS) bindeb-pkg
	@ls -1 $(BUILD)/*.deb
else
KMAKE_DEB := $(MAKE) -C $(TOP)/linux O=$(BUILD)/kernel-deb LLVM=1 \
	RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=$(BINDGEN)
deb: tree
	@BASE_CONFIG=$(DEB_BASE_CONFIG) scripts/configure.sh "$(KMAKE_DEB)" $(BUILD)/kernel-deb configs/flexsc.config
	+$(KMAKE_DEB) -j$(JOBS) bindeb-pkg
	@ls -1 $(BUILD)/*.deb
endif

# The HTTP server three ways (threads, epoll, FlexSC runtime) and hyper on
# three runtimes (flexsc-rt, tokio, tokio-uring) under the same load, after
# the runtime's in-kernel checks; SERVER_ARGS adds flexsc-httpd compare
# options (comma-separated; --modes takes names joined with +).
SERVER_ARGS ?= --secs,5,--conns,16
server-bench: kernel initramfs
	@FLEXSC_BENCH_ARGS="$(SERVER_ARGS)" scripts/run-vm.sh --kernel $(BZIMAGE) \
		--initrd $(INITRAMFS) --job server --log-dir $(BUILD)/server

# The debug kernel (KASAN, lockdep, kmemleak, UBSAN, Rust assertions and
# overflow checks), beside the normal one.
DEBUG_KBUILD := $(BUILD)/kernel-debug
KMAKE_DEBUG := $(MAKE) -C $(TOP)/linux O=$(DEBUG_KBUILD) LLVM=1 \
	RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=$(BINDGEN)

debug-config: tree
	@scripts/configure.sh "$(KMAKE_DEBUG)" $(DEBUG_KBUILD) configs/flexsc.config configs/debug.config

debug-kernel: debug-config
	@echo ">> building the debug kernel (first build: about 23 minutes on 2 cores)"
	+@$(KMAKE_DEBUG) -j$(JOBS) bzImage

# The profiling kernel (function_graph), beside the others, and where an
# entry's time goes against io_uring's path (scripts/profile-entry.sh).
PROF_KBUILD := $(BUILD)/kernel-profile
KMAKE_PROF := $(MAKE) -C $(TOP)/linux O=$(PROF_KBUILD) LLVM=1 \
	RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=$(BINDGEN)

profile-kernel: tree
	@scripts/configure.sh "$(KMAKE_PROF)" $(PROF_KBUILD) configs/flexsc.config configs/profile.config
	+@$(KMAKE_PROF) -j$(JOBS) bzImage

profile: profile-kernel userspace
	@scripts/profile-entry.sh --kernel $(PROF_KBUILD)/arch/x86/boot/bzImage

# The whole suite on the debug kernel, then a kmemleak scan that must
# find nothing.
STRESS_SECS ?= 300
debug-test: debug-kernel initramfs
	@FLEXSC_VM_MEM=2048 FLEXSC_STRESS_SECS=$(STRESS_SECS) scripts/run-vm.sh --kernel $(DEBUG_KBUILD)/arch/x86/boot/bzImage \
		--initrd $(INITRAMFS) --job debug --log-dir $(BUILD)/vm-debug --timeout 3000

# ---------------------------------------------------------------------------
# Userspace and the initramfs.
userspace: deps
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release --locked --target $(TARGET) \
		-p flexsc-tests -p flexsc-bench -p flexsc-httpd -p flexsc --bins --examples

# The uapi headers as users get them, and the C example built against them.
headers: kernel
	+@$(KMAKE) -s headers_install INSTALL_HDR_PATH=$(BUILD)/headers

# libflexsc, installed into build/ for the C programs, which are built
# against it as users build them (pkg-config, static), and into PREFIX.
LIBFLEXSC_MAKE := $(MAKE) -s -C libflexsc HEADERS=$(BUILD)/headers/include O=$(BUILD)/libflexsc
PREFIX ?= /usr/local
libflexsc: headers
	@$(LIBFLEXSC_MAKE) install installed-test PREFIX=$(BUILD)/libflexsc-install DESTDIR=

install: libflexsc
	@$(LIBFLEXSC_MAKE) install PREFIX=$(PREFIX)

c-example: libflexsc
	@$(MAKE) -s -C examples/c HEADERS=$(BUILD)/headers/include \
		LIBFLEXSC=$(BUILD)/libflexsc-install OUT=$(BUILD)/c-example

# Unmodified dynamically linked programs through FlexSC (docs/flexsc-run.md);
# scripts/flexsc-run-check.sh checks it in the booted kernel.
flexsc-run: tree
	@$(MAKE) -s -C tools/flexsc-run OUT=$(BUILD)/flexsc-run

# The series' kselftest, static for the initramfs, against the installed
# uapi headers; the suite runs it (kselftest::flexsc).
KSELFTEST_SRC := $(TOP)/linux/tools/testing/selftests
kselftest: headers
	@mkdir -p $(BUILD)/kselftest
	gcc -static -O2 -Wall -Werror -I$(BUILD)/headers/include -I$(KSELFTEST_SRC) \
		-o $(BUILD)/kselftest/flexsc_test $(KSELFTEST_SRC)/flexsc/flexsc_test.c

initramfs: userspace c-example kselftest
	@scripts/mkinitramfs.sh $(INITRAMFS) $(GUEST_BIN)

# ---------------------------------------------------------------------------
# Running.
host-test: tree
	$(CARGO) test --locked --workspace
	@mkdir -p $(BUILD)/libflexsc-host/hdr/linux
	@cp linux/include/uapi/linux/flexsc.h $(BUILD)/libflexsc-host/hdr/linux/
	@$(MAKE) -s -C libflexsc check HEADERS=$(BUILD)/libflexsc-host/hdr O=$(BUILD)/libflexsc-host
	@scripts/test-check-vm-logs.sh
	@scripts/check-semantics.py

vm-test: kernel initramfs
	@scripts/run-vm.sh --kernel $(BZIMAGE) --initrd $(INITRAMFS) --job tests \
		--log-dir $(BUILD)/vm

# checkpatch on the series, rustfmtcheck and clippy on the subsystem.
lint: kernel
	@scripts/lint.sh "$(KMAKE)"

test: host-test check-patches lint vm-test

# The host's own userland in the kernel (scripts/vm-run.sh): CMD is one
# shell command line; with KERNEL= nothing is built first.
KERNEL ?=
VM_KERNEL = $(or $(KERNEL),$(BZIMAGE))
VM_DEPS := $(if $(KERNEL),,kernel userspace)
vm-run: $(VM_DEPS)
	@scripts/vm-run.sh --kernel $(VM_KERNEL) -- '$(subst ','\'',$(value CMD))'

shell: $(VM_DEPS)
	@scripts/vm-run.sh --kernel $(VM_KERNEL) --shell

shell-initramfs: kernel initramfs
	@scripts/run-vm.sh --kernel $(BZIMAGE) --initrd $(INITRAMFS) --job shell \
		--log-dir $(BUILD)/vm

# Debian's nginx natively and under flexsc-run, under wrk, side by side.
APP_BENCH_SECS ?= 10
APP_BENCH_CONNS ?= 4
app-bench: $(VM_DEPS)
	@scripts/app-bench.sh --kernel $(VM_KERNEL) --secs $(APP_BENCH_SECS) --conns $(APP_BENCH_CONNS)

# The standard suite fits in a few minutes under TCG; BENCH_ARGS adds
# flexsc-bench options (comma-separated, e.g. BENCH_ARGS=--quick).
BENCH_ARGS ?=
bench: kernel initramfs
	@FLEXSC_BENCH_ARGS="$(BENCH_ARGS)" scripts/run-vm.sh --kernel $(BZIMAGE) \
		--initrd $(INITRAMFS) --job bench --log-dir $(BUILD)/bench
	@$(GUEST_BIN)/flexsc-bench --report $(BUILD)/bench/out/results.json \
		--out $(BUILD)/bench/out --png >/dev/null
	@echo ">> $(BUILD)/bench/out: report.txt, results.json, throughput.svg, throughput.png"

# The README's test command on a fresh Debian 12 (debootstrap minbase root
# with only git and make added), from a clone of HEAD. Needs root.
fresh-check:
	@scripts/fresh-check.sh

clean:
	rm -rf --one-file-system $(KBUILD) $(INITRAMFS) $(BUILD)/vm $(BUILD)/initramfs
	$(CARGO) clean

distclean: clean
	rm -rf --one-file-system linux $(BUILD)
