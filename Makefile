# The front door. `make demo` and `make test` are the README's quick start.
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local

TEST_DEPS := zabbix-agent:/usr/sbin/zabbix_agentd zabbix-agent2:/usr/sbin/zabbix_agent2 valgrind:valgrind gcc:cc g++:c++ pkg-config:pkg-config

.PHONY: all build release demo test stress fuzz bench toolchain deps-demo deps-test deps-bench header install

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# What `make install` installs; tests point it at their own build.
LIB ?= target/release/libexalate_zabbix.so
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

all: release

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release --workspace

# Rust new enough, or stop with what a build needs (before installing anything).
toolchain:
	CARGO=$(CARGO) scripts/toolchain.sh

deps-demo: toolchain
	scripts/deps.sh zabbix-agent:/usr/sbin/zabbix_agentd zabbix-agent2:/usr/sbin/zabbix_agent2 gcc:cc

deps-test: toolchain
	scripts/deps.sh $(TEST_DEPS)

demo: deps-demo release
	scripts/demo.sh

test: deps-test
	$(CARGO) test --workspace --features exalate_zabbix/fault-injection

deps-bench:
	scripts/deps.sh zabbix-agent:/usr/sbin/zabbix_agentd zabbix-agent2:/usr/sbin/zabbix_agent2 curl:curl jq:jq time:/usr/bin/time

# Benchmarks print tables: in-process calls and scale, then through the real agent,
# then how many relations one agent keeps fresh (capacity).
bench: deps-bench
	$(CARGO) bench --bench inprocess --bench agent --bench capacity

# The long tests (ignored by `make test`), one at a time: a soak of the
# running agent and of agent 2's plugin, 16 clients for EXALATE_SOAK_SECONDS
# (default 60; the plugin 90), printing each process's RSS; the heap in use
# over 13,200 item calls through the item layer and through the plugin.
# CI runs it after `make test`.
stress: deps-test
	$(CARGO) test --workspace --features exalate_zabbix/fault-injection --test robustness --test agent2 -- --ignored --nocapture --test-threads=1

# Fuzzing, FUZZ_SECONDS per target (minutes: not in CI). cargo-fuzz needs
# nightly features: RUSTC_BOOTSTRAP=1 lets stable Rust provide them.
# New inputs go to fuzz/corpus/ (not committed); seeds are in fuzz/seeds/.
FUZZ_SECONDS ?= 180
FUZZ_TARGETS ?= item_params queue_response config_parse
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && \
	  RUSTC_BOOTSTRAP=1 LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp \
	    $(CARGO) fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

# Regenerates the committed C header from src/capi.rs.
header:
	UPDATE_HEADER=1 $(CARGO) test --test c_api committed_header_is_fresh

# The packaged templates (6.0 and 7.0) and their README's tables, from
# packaging/template/source.yaml.
.PHONY: template
template:
	UPDATE_TEMPLATE=1 $(CARGO) test --test template the_template_files_are_generated_from_the_source

# The C library: the .so with its SONAME links, the header, pkg-config.
install:
	test -f $(LIB) || $(CARGO) build --release
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/libexalate_zabbix.so.$(VERSION)
	ln -sf libexalate_zabbix.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libexalate_zabbix.so.0
	ln -sf libexalate_zabbix.so.0 $(DESTDIR)$(LIBDIR)/libexalate_zabbix.so
	install -m 0644 include/exalate_zabbix.h $(DESTDIR)$(INCLUDEDIR)/exalate_zabbix.h
	sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(LIBDIR)|' -e 's|@includedir@|$(INCLUDEDIR)|' \
	    -e 's|@version@|$(VERSION)|' packaging/exalate_zabbix.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/exalate_zabbix.pc

# --- One module for every supported agent (5.0, 6.0, 7.0; glibc 2.28 and up) ---
# The release artifacts, built against glibc 2.28 (RHEL 8, Debian 10 and later)
# with cargo-zigbuild, for x86_64 (amd64) and aarch64 (arm64): packages take
# them from target/<rust target>/release/.
GLIBC_FLOOR := 2.28
COMPAT_TARGET := x86_64-unknown-linux-gnu
COMPAT_SO := target/$(COMPAT_TARGET)/release/libexalate_zabbix.so
COMPAT_PLUGIN := target/$(COMPAT_TARGET)/release/zabbix-agent2-plugin-exalate
ARM64_TARGET := aarch64-unknown-linux-gnu
ARM64_SO := target/$(ARM64_TARGET)/release/libexalate_zabbix.so
ARM64_PLUGIN := target/$(ARM64_TARGET)/release/zabbix-agent2-plugin-exalate
ZIG_VENV := target/compat/zig-venv
CARGO_ZIGBUILD_VERSION := 0.24.1
ZIGLANG_VERSION := 0.17.1
ZIGBUILD = PATH="$(CURDIR)/$(ZIG_VENV)/bin:$$PATH" $(CARGO) zigbuild --release -p exalate_zabbix
# Real agents, one Debian chroot each: bullseye 5.0.8, bookworm 6.0.14, trixie 7.0.
COMPAT_SUITES ?= bullseye bookworm trixie
COMPAT_ROOTS := target/compat/roots
# Debian's arm64 agents, run under qemu-user from an arm64 sysroot each.
ARM64_SUITES ?= bullseye bookworm trixie
ARM64_ROOTS := target/compat/roots-arm64

.PHONY: release-compat compat-test compat-roots compat-clean print-compat-so print-compat-plugin

release-compat:
	scripts/deps.sh binutils:readelf
	scripts/zig-tools.sh $(ZIG_VENV) $(CARGO_ZIGBUILD_VERSION) $(ZIGLANG_VERSION)
	rustup target list --installed | grep -qx $(ARM64_TARGET) || rustup target add $(ARM64_TARGET)
	$(ZIGBUILD) --target $(COMPAT_TARGET).$(GLIBC_FLOOR) --lib --bin zabbix-agent2-plugin-exalate --bin exalate-zabbix
	scripts/max-glibc.sh $(COMPAT_SO) $(GLIBC_FLOOR)
	scripts/max-glibc.sh $(COMPAT_PLUGIN) $(GLIBC_FLOOR)
	scripts/max-glibc.sh $(dir $(COMPAT_PLUGIN))exalate-zabbix $(GLIBC_FLOOR)
	@echo "x86_64 module and agent 2 plugin for glibc $(GLIBC_FLOOR)+: $(COMPAT_SO) $(COMPAT_PLUGIN)"
	$(ZIGBUILD) --target $(ARM64_TARGET).$(GLIBC_FLOOR) --lib --bin zabbix-agent2-plugin-exalate --bin exalate-zabbix
	scripts/max-glibc.sh $(ARM64_SO) $(GLIBC_FLOOR)
	scripts/max-glibc.sh $(ARM64_PLUGIN) $(GLIBC_FLOOR)
	scripts/max-glibc.sh $(dir $(ARM64_PLUGIN))exalate-zabbix $(GLIBC_FLOOR)
	@echo "aarch64 module and agent 2 plugin for glibc $(GLIBC_FLOOR)+: $(ARM64_SO) $(ARM64_PLUGIN)"

print-compat-so:
	@echo $(COMPAT_SO)

print-compat-plugin:
	@echo $(COMPAT_PLUGIN)

compat-roots:
	scripts/deps.sh debootstrap:debootstrap qemu-user-static:qemu-aarch64-static
	scripts/compat-roots.sh $(COMPAT_ROOTS) $(COMPAT_SUITES)
	scripts/compat-roots.sh --arch arm64 $(ARM64_ROOTS) $(ARM64_SUITES)

# Each suite's real agent loads the module and answers every item over TCP,
# -t and -p: amd64 in chroots, arm64 under qemu-user; trixie's agent 2 (7.0)
# runs $(COMPAT_PLUGIN) the same way. The build (CPU) and the roots (network)
# run side by side.
compat-test:
	$(MAKE) --no-print-directory -j2 release-compat compat-roots
	EXALATE_COMPAT_SO="$(CURDIR)/$(COMPAT_SO)" EXALATE_COMPAT_PLUGIN="$(CURDIR)/$(COMPAT_PLUGIN)" \
	EXALATE_COMPAT_ROOTS="$(CURDIR)/$(COMPAT_ROOTS)" \
	EXALATE_COMPAT_SUITES="$(COMPAT_SUITES)" GLIBC_FLOOR=$(GLIBC_FLOOR) \
	EXALATE_COMPAT_ARM64_SO="$(CURDIR)/$(ARM64_SO)" EXALATE_COMPAT_ARM64_ROOTS="$(CURDIR)/$(ARM64_ROOTS)" \
	EXALATE_COMPAT_ARM64_SUITES="$(ARM64_SUITES)" \
	$(CARGO) test --test compat -- --ignored --nocapture --test-threads=1

compat-clean:
	rm -rf --one-file-system $(COMPAT_ROOTS) $(ARM64_ROOTS)

# Packages: a .deb and an .rpm per architecture in target/packages/
# (docs/testing.md "Building the packages"), from the glibc-2.28 builds
# (release-compat) in each architecture's target/<rust target>/release/.
# MODULE_SO names another module: then only this machine's architecture is
# packaged, from its directory.
# The arm64 .deb's Depends come from arm64 bookworm's own libc6 and libgcc-s1,
# which its sysroot (compat-roots) holds.
PACKAGE_ARCHES := x86_64 aarch64
PACKAGE_DIRS := $(foreach arch,$(PACKAGE_ARCHES),$(arch)=target/$(arch)-unknown-linux-gnu/release)
MODULE_SO ?=
PACKAGE_DEPS := dpkg-dev:dpkg-shlibdeps rpm:rpmbuild binutils-x86-64-linux-gnu:x86_64-linux-gnu-strip \
	binutils-aarch64-linux-gnu:aarch64-linux-gnu-strip debootstrap:debootstrap qemu-user-static:qemu-aarch64-static
PACKAGE_TEST_DEPS := $(PACKAGE_DEPS) zabbix-agent:/usr/sbin/zabbix_agentd zabbix-agent2:/usr/sbin/zabbix_agent2 lintian:lintian \
	rpm2cpio:rpm2cpio cpio:cpio php-cli:php php-symfony-yaml:/usr/share/php/Symfony/Component/Yaml/Yaml.php \
	selinux-policy-dev:/usr/share/selinux/devel/Makefile gcc:cc pkg-config:pkg-config

.PHONY: packages package-test deps-packages deps-package-test

deps-packages:
	scripts/deps.sh $(PACKAGE_DEPS)

deps-package-test:
	scripts/deps.sh $(PACKAGE_TEST_DEPS)

packages: deps-packages
ifeq ($(MODULE_SO),)
	$(MAKE) --no-print-directory release-compat
	scripts/compat-roots.sh --arch arm64 $(ARM64_ROOTS) bookworm
	packaging/build-packages.sh $(PACKAGE_DIRS)
else
	packaging/build-packages.sh $(shell uname -m)=$(dir $(MODULE_SO))
endif

# Installs the .deb on this machine (root), runs Debian's stock agent with it, purges it.
package-test: deps-package-test packages
	$(CARGO) build --release -p fake_exalate_node --bin fake-exalate-node
	packaging/package-test.sh

# The template in a live Zabbix 6.0 and 7.0 (docs/testing.md "The template in
# a live Zabbix"): PostgreSQL, zabbix_server, a zabbix_proxy, the frontend, and
# hosts on zabbix_agentd (passive, through the proxy, active) and
# zabbix_agent2 with the plugin, each version importing its own template
# file; checked through the API. 6.0: bookworm's, unpacked; 7.0: trixie's, in
# a root of its own (the compat root's copy) run with chroot in a private
# mount namespace. Everything private under target/e2e/ and on random
# loopback ports. As root. E2E_VERSIONS=7.0 runs one of them.
# The agent 2 plugin runs as its debug build: after `make test` only the
# crate itself compiles.
E2E_MODULE ?= $(COMPAT_SO)
E2E_VERSIONS ?= 6.0 7.0
AGENT2_PLUGIN := zabbix-agent2-plugin-exalate
.PHONY: e2e
e2e:
ifneq ($(filter 6.0,$(E2E_VERSIONS)),)
	scripts/e2e/install.sh target/e2e/root
endif
ifneq ($(filter 7.0,$(E2E_VERSIONS)),)
	scripts/e2e/install70.sh target/e2e/root-7.0
endif
ifeq ($(E2E_MODULE),$(COMPAT_SO))
	$(MAKE) --no-print-directory release-compat
endif
	$(CARGO) build --release -p fake_exalate_node --bin fake-exalate-node
	scripts/deps.sh zabbix-agent2:/usr/sbin/zabbix_agent2
	$(CARGO) build -p exalate_zabbix --bin $(AGENT2_PLUGIN)
	for v in $(E2E_VERSIONS); do \
	  E2E_ZABBIX=$$v scripts/e2e/run.sh $(E2E_MODULE) target/release/fake-exalate-node target/debug/$(AGENT2_PLUGIN) || exit 1; \
	done
