# The front door. `make demo` and `make test` are the README's quick start.
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local

TEST_DEPS := zabbix-agent:/usr/sbin/zabbix_agentd valgrind:valgrind gcc:cc g++:c++ pkg-config:pkg-config

.PHONY: all build release demo test stress fuzz deps-demo deps-test header install

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

deps-demo:
	scripts/deps.sh zabbix-agent:/usr/sbin/zabbix_agentd

deps-test:
	scripts/deps.sh $(TEST_DEPS)

demo: deps-demo release
	scripts/demo.sh

test: deps-test
	$(CARGO) test --workspace --features exalate_zabbix/fault-injection

# The long tests (ignored by `make test`), one at a time: a soak of the
# running agent, 16 clients for EXALATE_SOAK_SECONDS (default 60), printing
# each agent process's RSS; the heap in use over 20,000 item calls.
# CI runs it after `make test`.
stress: deps-test
	$(CARGO) test --workspace --features exalate_zabbix/fault-injection --test robustness -- --ignored --nocapture --test-threads=1

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
