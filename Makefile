# zramd — one non-recursive GNU make build.
#
# Each directory adds its own rules in a fragment (allocator/build.mk,
# daemon/build.mk, tests/*/build.mk, ...) that this file includes; there is
# no recursive make. Fragments add their test targets to CHECK_TARGETS and
# so on, and the aggregate targets are defined at the end.
#
#   make            build everything into $(BUILD)/
#   make run        start a default 1 GiB device in the foreground
#   make check      build and run every test (installs packages via deps)
#   make bench      benchmarks against the peers (docs/BENCHMARKS.md)
#   make bench-cold only its cold-tier section (tests/bench/cold.mk)
#   make install    PREFIX, DESTDIR, SYSCONFDIR honoured
#   make deb        the Debian package, into $(BUILD)/deb/ (mk/deb.mk)
#   make deps       install missing Debian packages (or print the command)
#   make format     clang-format every C file
#
# WERROR=1 adds -Werror (CI sets it). SANITIZE=address,undefined or
# SANITIZE=thread builds instrumented into a separate $(BUILD).

.DEFAULT_GOAL := all
SHELL := /bin/bash

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=

VERSION := 0.1.0

CC ?= cc
CFLAGS ?= -O2 -g
WARNFLAGS := -Wall -Wextra -Wshadow -Wvla
ifeq ($(WERROR),1)
WARNFLAGS += -Werror
endif

SANITIZE ?=
ifneq ($(SANITIZE),)
BUILD ?= build/san-$(subst $(comma),-,$(SANITIZE))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	$(if $(findstring undefined,$(SANITIZE)),-fno-sanitize-recover=undefined)
else
BUILD ?= build
SANFLAGS :=
endif
comma := ,

PKG_CONFIG ?= pkg-config
# Each pkg-config query runs only when a recipe needs it (recursive '=').
pkgcflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pkglibs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

ALL_CFLAGS = -std=gnu11 -pthread -fPIC $(WARNFLAGS) $(SANFLAGS) \
	-Iinclude -DZRAMD_VERSION='"$(VERSION)"' $(CFLAGS) $(CPPFLAGS)
ALL_LDFLAGS = -pthread $(SANFLAGS) $(LDFLAGS)

# Filled in by the fragments.
ALL_TARGETS :=
CHECK_TARGETS :=
BENCH_TARGETS :=
INSTALL_TARGETS :=

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS_$(<D)) -MMD -MP -c -o $@ $<

include mk/deps.mk
include mk/deb.mk
# Fragments, in an order where daemon/ comes before tests/ (tests link
# with DAEMON_LIB_OBJS). Every directory's *.mk is picked up, so adding a
# fragment needs no edit here.
include $(sort $(wildcard allocator/*.mk daemon/*.mk docs/*.mk systemd/*.mk config/*.mk))
include $(sort $(wildcard tests/*/*.mk))

# Sanitizer runs: the same targets, built instrumented into a build folder
# of their own. Fragments add targets to ASAN_TARGETS and TSAN_TARGETS.
ASAN_TARGETS += check-unit
.PHONY: check-asan check-tsan
check-asan: deps
	@set -e; for t in $(ASAN_TARGETS); do \
		$(MAKE) --no-print-directory SANITIZE=address,undefined BUILD=$(BUILD)/asan $$t; done
check-tsan: deps
	@set -e; for t in $(TSAN_TARGETS); do \
		$(MAKE) --no-print-directory SANITIZE=thread BUILD=$(BUILD)/tsan $$t; done

.PHONY: all check bench install clean format run
all: $(ALL_TARGETS)

# Tests run one after another, so their output stays readable.
check: deps all
	@set -e; for t in $(CHECK_TARGETS); do $(MAKE) --no-print-directory $$t; done
	@echo "make check: all test targets passed ($(CHECK_TARGETS))"

bench: deps all $(BENCH_TARGETS)

install: all $(INSTALL_TARGETS)

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# daemon/build.mk defines the real recipe; until the plugin exists, say so.
ifndef RUN_DEFINED
run: deps
	@echo "make run: the plugin (daemon/) is not built yet; nothing to start" >&2; exit 1
endif
