# The front door. `make demo` and `make test` are the README's quick start.
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local

TEST_DEPS := zabbix-agent:/usr/sbin/zabbix_agentd valgrind:valgrind gcc:cc g++:c++ pkg-config:pkg-config

.PHONY: all build release demo test deps-demo deps-test

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
	$(CARGO) test --workspace

# Packages: a .deb and an .rpm in target/packages/ (README "Packages").
# MODULE_SO may name a module built elsewhere (e.g. for an older glibc).
MODULE_SO ?= target/release/libexalate_zabbix.so
PACKAGE_DEPS := dpkg-dev:dpkg-shlibdeps rpm:rpmbuild binutils:strip
PACKAGE_TEST_DEPS := $(PACKAGE_DEPS) zabbix-agent:/usr/sbin/zabbix_agentd lintian:lintian \
	rpm2cpio:rpm2cpio cpio:cpio php-cli:php php-symfony-yaml:/usr/share/php/Symfony/Component/Yaml/Yaml.php \
	selinux-policy-dev:/usr/share/selinux/devel/Makefile gcc:cc pkg-config:pkg-config

.PHONY: packages package-test deps-packages deps-package-test

deps-packages:
	scripts/deps.sh $(PACKAGE_DEPS)

deps-package-test:
	scripts/deps.sh $(PACKAGE_TEST_DEPS)

packages: deps-packages
ifeq ($(MODULE_SO),target/release/libexalate_zabbix.so)
	$(CARGO) build --release --lib
endif
	packaging/build-packages.sh $(MODULE_SO)

# Installs the .deb on this machine (root), runs Debian's stock agent with it, purges it.
package-test: deps-package-test packages
	$(CARGO) build --release -p fake_exalate_node --bin fake-exalate-node
	packaging/package-test.sh
