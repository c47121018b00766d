# SPDX-License-Identifier: GPL-2.0
#
# AF_IVSHMEM: everything starts here.
#
#   make            build the modules (against Debian's 6.1 headers, or
#                   KDIR=...) and the user-space programs
#   make demo       the main job: guests talking through a shared region
#   make check      every test: lint, native tests, guest suites
#   make lint       W=1 builds against 6.1 and 6.12, sparse, checkpatch
#   make guests     the guest suite alone (KERNEL=6.1|6.12|debug)
#   make native-test  the region core's native tests
#   make model-check  every interleaving of two VMs' handshakes, small scripts
#   make tool-test  the ivshm tool's command line, natively
#   make fuzz       fuzz the region core, as bytes and as programs of two
#                   VMs' actions (FUZZ_SECONDS each, default 600)
#   make bench-ring the region core's ring against memcpy, a mutex-guarded
#                   buffer and AF_UNIX, natively (table + CSV in build/bench)
#   make bench      AF_IVSHMEM against AF_UNIX (one guest) and TCP over
#                   virtio-net on a bridge (two guests), with the region's
#                   raw ring as the ceiling and a lock-guarded buffer: CSV,
#                   summary and plots in build/bench/results
#   make bench-rebal  a bulk transfer with rebalancing off and on
#
# Build outputs go to build/; downloaded or extracted material to the cache
# (~/.cache/af-ivshmem, or IVSHM_CACHE).

SHELL := /bin/bash
BUILD := $(CURDIR)/build
KDIR ?= /usr/src/linux-headers-$(shell . scripts/common.sh; ivshm_kver 6.1)
KERNEL ?= 6.1

CC := gcc
USER_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror \
	-Iinclude/uapi
# Recursive, so the tarball is only touched by targets that need it.
KSFT_DIR = $(shell scripts/ksrc.sh)/tools/testing/selftests

# In-guest tests: static (the initramfs has no libc), with UBSan in trap
# mode, which needs no run-time library.
GUEST_TESTS := module devshm region_raw pci socket pingpong mesh rebalance nl soak perm \
	sysfuzz pause hammer
GUEST_TEST_BINS := $(GUEST_TESTS:%=$(BUILD)/selftests/%_test)
TEST_LIB := selftests/ivshmem/ivshm_test.c selftests/ivshmem/ivshm_test.h \
	selftests/ivshmem/ivshm_nl.c selftests/ivshmem/ivshm_nl.h
GUEST_CFLAGS := $(USER_CFLAGS) -static -pthread -fsanitize=undefined \
	-fsanitize-undefined-trap-on-error

SERVER_SRCS := $(wildcard userspace/ivshmem-server/*.c)

# The region core, built natively from the module's own sources.
CORE_DIR := net/ivshmem/core
CORE_SRCS := $(wildcard $(CORE_DIR)/*.c)
CORE_HDRS := $(wildcard $(CORE_DIR)/*.h) userspace/include/ivshm_kcompat.h
NATIVE_CFLAGS := $(USER_CFLAGS) -pthread -fsanitize=address,undefined \
	-fno-sanitize-recover=all -Iuserspace/include -I$(CORE_DIR) \
	-DIVSHM_ACCESS_HOOK

.PHONY: all modules userspace-bin selftests-bin deps lint check guests lib examples \
	demo clean native-test model-check tool-test fuzz bench-ring bench \
	bench-rebal

all: modules userspace-bin

deps:
	@scripts/deps.sh

modules:
	scripts/build-modules.sh $(KDIR) $(BUILD)/kmod/$(notdir $(KDIR)) W=1

userspace-bin: $(BUILD)/userspace/ivshmem-server $(BUILD)/userspace/ivshm lib examples

# The configuration tool, on libmnl.
TOOL_SRCS := $(wildcard userspace/ivshm/*.c)
TOOL_DEPS := $(TOOL_SRCS) $(wildcard userspace/ivshm/*.h) \
	include/uapi/linux/ivshmem_netlink.h
MNL_CFLAGS = $(shell pkg-config --cflags libmnl)
MNL_LIBS = $(shell pkg-config --libs libmnl)

$(BUILD)/userspace/ivshm: $(TOOL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(MNL_CFLAGS) -o $@ $(TOOL_SRCS) $(MNL_LIBS)

# The same for the guests and the tool's own tests: ASan and UBSan, linked
# dynamically (there is no static libmnl); the runner copies its libraries.
$(BUILD)/selftests/ivshm: $(TOOL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(MNL_CFLAGS) -fsanitize=address,undefined \
		-fno-sanitize-recover=all -fno-omit-frame-pointer -o $@ \
		$(TOOL_SRCS) $(MNL_LIBS)

# libivshmem and the examples that use it, for this machine.
LIB_SRCS := userspace/lib/ivshmem.c userspace/lib/ivshmem.h
EXAMPLES := ivshmem_sender ivshmem_receiver
EXAMPLE_DEPS = userspace/examples/stream.h $(LIB_SRCS)

lib:
	$(MAKE) -C userspace/lib BUILD=$(BUILD)

examples: $(EXAMPLES:%=$(BUILD)/userspace/%)

$(BUILD)/userspace/ivshmem_%: userspace/examples/ivshmem_%.c $(EXAMPLE_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -Iuserspace/lib -o $@ $< userspace/lib/ivshmem.c

$(BUILD)/userspace/ivshmem-server: $(SERVER_SRCS) $(wildcard userspace/ivshmem-server/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -o $@ $(SERVER_SRCS)

selftests-bin: $(GUEST_TEST_BINS) $(EXAMPLES:%=$(BUILD)/selftests/%) \
	$(BUILD)/selftests/ivshm \
	$(BUILD)/selftests/lib_test $(BUILD)/selftests/net_bench \
	$(BUILD)/selftests/rebal_bench $(BUILD)/selftests/region_bench \
	$(BUILD)/selftests/crash_test \
	$(BUILD)/selftests/hostile_peer $(BUILD)/selftests/hostile_test

# The hostile peer writes the region itself, with the region core's help.
$(BUILD)/selftests/hostile_peer: selftests/ivshmem/hostile_peer.c \
		selftests/ivshmem/hostile.h $(CORE_SRCS) $(CORE_HDRS) $(TEST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iuserspace/include -I$(CORE_DIR) -o $@ $< \
		$(CORE_SRCS) selftests/ivshmem/ivshm_test.c

$(BUILD)/selftests/crash_test: selftests/ivshmem/crash_test.c $(LIB_SRCS) \
		$(TEST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iuserspace/lib -o $@ $< \
		selftests/ivshmem/ivshm_test.c selftests/ivshmem/ivshm_nl.c userspace/lib/ivshmem.c

$(BUILD)/selftests/net_bench: userspace/bench/net_bench.c $(LIB_SRCS) \
		userspace/bench/tracefs.c userspace/bench/tracefs.h $(TEST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iuserspace/lib -Iselftests/ivshmem -o $@ $< \
		userspace/bench/tracefs.c \
		selftests/ivshmem/ivshm_test.c selftests/ivshmem/ivshm_nl.c userspace/lib/ivshmem.c

# The region without the module: the core's ring and a lock-guarded
# buffer between two guests, over BAR2 mapped from user space.
$(BUILD)/selftests/region_bench: userspace/bench/region_bench.c $(CORE_SRCS) \
		$(CORE_HDRS) $(TEST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iuserspace/include -I$(CORE_DIR) -o $@ $< \
		$(CORE_SRCS) selftests/ivshmem/ivshm_test.c \
		selftests/ivshmem/ivshm_nl.c

$(BUILD)/selftests/rebal_bench: userspace/bench/rebal_bench.c \
		$(TEST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iselftests/ivshmem -o $@ $< \
		selftests/ivshmem/ivshm_test.c selftests/ivshmem/ivshm_nl.c

$(BUILD)/selftests/lib_test: selftests/ivshmem/lib_test.c $(LIB_SRCS) \
		$(TEST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -isystem $(KSFT_DIR) -Iuserspace/lib -o $@ $< \
		selftests/ivshmem/ivshm_test.c selftests/ivshmem/ivshm_nl.c userspace/lib/ivshmem.c

$(BUILD)/selftests/nl_test: selftests/ivshmem/nl_test.c $(TEST_LIB) \
		selftests/ivshmem/tjson.c selftests/ivshmem/tjson.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -isystem $(KSFT_DIR) -o $@ $< \
		selftests/ivshmem/ivshm_test.c selftests/ivshmem/ivshm_nl.c \
		selftests/ivshmem/tjson.c

$(BUILD)/selftests/hostile_test: selftests/ivshmem/hostile_test.c \
		selftests/ivshmem/hostile.h $(TEST_LIB) \
		selftests/ivshmem/tjson.c selftests/ivshmem/tjson.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -o $@ $< selftests/ivshmem/ivshm_test.c \
		selftests/ivshmem/ivshm_nl.c selftests/ivshmem/tjson.c

# The examples again, static, for the guests.
$(BUILD)/selftests/ivshmem_%: userspace/examples/ivshmem_%.c $(EXAMPLE_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iuserspace/lib -o $@ $< userspace/lib/ivshmem.c

$(BUILD)/selftests/%_test: selftests/ivshmem/%_test.c \
		$(TEST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -isystem $(KSFT_DIR) -o $@ $< selftests/ivshmem/ivshm_test.c \
		selftests/ivshmem/ivshm_nl.c

# The tool's command line, natively, under ASan and UBSan (no module).
tool-test: $(BUILD)/userspace/ivshm $(BUILD)/selftests/ivshm
	userspace/ivshm/cli_test.sh $(BUILD)/selftests/ivshm

# Native tests of the region core, under ASan and UBSan.
native-test: $(BUILD)/native/core_test
	$(BUILD)/native/core_test

# Every interleaving of two honest VMs' handshakes (selftests/fuzz/conn_model.c).
model-check:
	$(MAKE) -s -C selftests/fuzz BUILD=$(BUILD) $(BUILD)/fuzz/conn_model
	$(BUILD)/fuzz/conn_model

$(BUILD)/native/core_test: selftests/native/core_test.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(NATIVE_CFLAGS) -isystem $(KSFT_DIR) -o $@ $< $(CORE_SRCS)

bench-ring: deps
	$(MAKE) -C userspace/bench run BUILD=$(BUILD)

# The socket benchmark, in guests (scripts/bench.sh).
bench: deps
	scripts/bench.sh

bench-rebal: deps
	selftests/runner/run.sh --placements bench-rebal

FUZZ_SECONDS ?= 600
fuzz: deps
	selftests/fuzz/run.sh $(FUZZ_SECONDS)
	TARGET=conn_fuzz selftests/fuzz/run.sh $(FUZZ_SECONDS)

lint: deps
	scripts/lint.sh

guests: deps
	selftests/runner/run.sh --kernel $(KERNEL)

check: deps
	scripts/check.sh

demo: deps
	scripts/demo.sh

clean:
	rm -rf $(BUILD)
