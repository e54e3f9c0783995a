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
