# fedgate: non-recursive build. `make V=1` shows commands, `make SANITIZE=1`
# builds with ASan+UBSan into build/san, `make SANITIZE=thread` with ThreadSanitizer into
# build/tsan (`make test-tsan` runs the threaded tests there).
CC ?= cc
BUILD := build
.DEFAULT_GOAL := all
CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. -Iinclude -MMD -MP
LDFLAGS :=
LDLIBS := -lcurl -lssl -lcrypto -lgcrypt -luring -lcjson -lnftables -lmnl -lbpf -lpthread
ifeq ($(SANITIZE),1)
BUILD := build/san
CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SANITIZE),thread)
BUILD := build/tsan
CFLAGS += -O1 -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

# One static library per folder (README "Layout"); fedgate is control/main.c and the five.
# Order matters to the linker: each library before the ones it calls.
LIB_SRCS := $(wildcard lib/*.c)
CA_SRCS := $(wildcard control/ca/*.c)
CTL_SRCS := $(filter-out control/main.c,$(wildcard control/*.c))
DP_SRCS := $(wildcard dataplane/*.c)
# bpf/X.c: the loader of bpf/X.bpf.c (libbpf-bootstrap's shape), called by the control process.
BPF_SRCS := $(filter-out %.bpf.c,$(wildcard bpf/*.c))
SRCS := control/main.c $(CTL_SRCS) $(CA_SRCS) $(DP_SRCS) $(BPF_SRCS) $(LIB_SRCS)
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
ARCHIVES := $(BUILD)/control/libcontrol.a $(BUILD)/control/ca/libca.a \
	$(BUILD)/dataplane/libdataplane.a $(BUILD)/bpf/libbpfload.a $(BUILD)/lib/libfedgate.a
$(BUILD)/control/libcontrol.a: $(CTL_SRCS:%.c=$(BUILD)/%.o)
$(BUILD)/bpf/libbpfload.a: $(BPF_SRCS:%.c=$(BUILD)/%.o)
$(BUILD)/control/ca/libca.a: $(CA_SRCS:%.c=$(BUILD)/%.o)
$(BUILD)/dataplane/libdataplane.a: $(DP_SRCS:%.c=$(BUILD)/%.o)
$(BUILD)/lib/libfedgate.a: $(LIB_SRCS:%.c=$(BUILD)/%.o)
$(ARCHIVES):
	$(call msg,AR,$@)
	$(Q)mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
DEPS_STAMP := build/.deps-build

.PHONY: all deps test test-tsan demo clean unit bench fuzz deb
all: $(BUILD)/fedgate $(ARCHIVES)

# The first build installs what is missing (as root) or says what to install.
$(DEPS_STAMP): scripts/deps
	$(Q)scripts/deps build
	$(Q)mkdir -p $(@D) && touch $@
deps: $(DEPS_STAMP)

# bpf/*.bpf.c: BPF programs, by clang from UAPI headers only (no vmlinux.h: bpf/README.md),
# then a libbpf skeleton that the loader bpf/X.c includes (-I$(BUILD)/bpf). Every loader
# waits for every skeleton: there are few, and the dependency stays right as files come.
BPF_CC ?= clang
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Werror -Ibpf -Iinclude \
	-I/usr/include/$(shell $(CC) -dumpmachine)
CFLAGS += -I$(BUILD)/bpf
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(wildcard bpf/*.bpf.c))
$(BPF_SRCS:%.c=$(BUILD)/%.o): $(BPF_SKELS)
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(wildcard include/fedgate/*-t.h) \
		| $(DEPS_STAMP)
	$(call msg,BPF,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPF_CC) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)bpftool gen skeleton $< name $(notdir $*) >$@.tmp && mv $@.tmp $@
.PRECIOUS: $(BUILD)/bpf/%.bpf.o
# The probe of bpf/README.md (sockmap and kernel TLS), run by tests/vm/test_sockmap_ktls.py.
$(BUILD)/tests/ktls_sockmap_probe: tests/vm/ktls_sockmap_probe.c | $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $< $(LDFLAGS) -lbpf -o $@
test: $(BUILD)/tests/ktls_sockmap_probe

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/fedgate: $(BUILD)/control/main.o $(ARCHIVES)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(ARCHIVES)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -Itests/unit $< $(ARCHIVES) $(LDFLAGS) $(LDLIBS) -o $@

unit: $(UNIT_BINS)

# tests/fuzz/fuzz_X.c: libFuzzer targets, each including the .c it tests (wireguard-tools'
# src/fuzz/); clang with ASan+UBSan, linked against the product built by clang into
# build/fuzz (never build/san: gcc's and clang's sanitizer runtimes do not mix).
FUZZ := build/fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=gnu11 -O1 -g -D_GNU_SOURCE -I. -Iinclude -I$(BUILD)/bpf -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ)/%)
FUZZ_PRODUCT := $(filter-out control/main.c,$(SRCS))
$(FUZZ)/obj/%.o: %.c | $(DEPS_STAMP)
	$(call msg,FUZZCC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BPF_SRCS:%.c=$(FUZZ)/obj/%.o): $(BPF_SKELS)
$(FUZZ)/libproduct.a: $(FUZZ_PRODUCT:%.c=$(FUZZ)/obj/%.o)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(FUZZ)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ)/libproduct.a
	$(call msg,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d $< $(FUZZ)/libproduct.a \
		$(LDLIBS) -o $@
fuzz: $(FUZZ_BINS)

test: $(BUILD)/fedgate $(UNIT_BINS) $(BUILD)/bench/aead $(FUZZ_BINS)
	$(Q)scripts/deps test
	$(Q)FEDGATE=$(abspath $(BUILD)/fedgate) UNIT_DIR=$(abspath $(BUILD)/tests) \
		BUILD_DIR=$(abspath $(BUILD)) FUZZ_DIR=$(abspath $(FUZZ)) $(TSAN_ENV) \
		/usr/bin/python3 -m pytest -p no:cacheprovider -q $(or $(PYTEST_ARGS),tests)

# The plain `make test` also builds fedgate with ThreadSanitizer, for tests/test_tsan.py (the
# handshake threads under TSan); a sanitizer build of the suite has no room for a second one.
ifeq ($(SANITIZE),)
test: tsan-fedgate
TSAN_ENV = TSAN_FEDGATE=$(abspath build/tsan/fedgate)
endif
.PHONY: tsan-fedgate
tsan-fedgate:
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread build/tsan/fedgate

# make test-tsan: the tests that drive the control process's threads (handshake threads, and
# the tunnels and refusals around them) on a ThreadSanitizer build. A report makes the
# gateway exit 66 and its log hold "WARNING: ThreadSanitizer": the gateways fixture fails on
# either. tests/tsan.supp says why each of its entries is there.
TSAN_TESTS ?= tests/test_handshake_threads.py tests/test_tunnel.py tests/test_refusals.py
test-tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread build/tsan/fedgate
	$(Q)scripts/deps test
	$(Q)FEDGATE=$(abspath build/tsan/fedgate) UNIT_DIR=$(abspath build/tsan/tests) \
		BUILD_DIR=$(abspath build/tsan) \
		TSAN_OPTIONS="exitcode=66 second_deadlock_stack=1 suppressions=$(abspath tests/tsan.supp)" \
		/usr/bin/python3 -m pytest -p no:cacheprovider -q $(or $(PYTEST_ARGS),$(TSAN_TESTS))

# bench/*.c: the load and sink tools of `make bench` (QUICK=1: plain, fedgate, stunnel only).
BENCH_BINS := $(addprefix $(BUILD)/bench/,echod pingpong conns aead)
$(BUILD)/bench/%: bench/%.c | $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $< -o $@

# aead times fedgate's own record layer, so it links it.
$(BUILD)/bench/aead: bench/aead.c $(BUILD)/lib/libfedgate.a
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $^ $(LDFLAGS) $(LDLIBS) -o $@

# legsrelay, the plain-relay+redirect floor, drives fedgate's local legs redirect through its
# loader (bpf/legs.c), so it links the bpf/ and lib/ libraries; only where that loader is.
ifneq ($(wildcard bpf/legs.c),)
BENCH_BINS += $(BUILD)/bench/legsrelay
$(BUILD)/bench/legsrelay: bench/legsrelay.c $(BUILD)/bpf/libbpfload.a $(BUILD)/lib/libfedgate.a
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $^ $(LDFLAGS) $(LDLIBS) -o $@
test: $(BUILD)/bench/legsrelay
endif

bench: $(BUILD)/fedgate $(BENCH_BINS)
	$(Q)scripts/deps bench
	$(Q)/usr/bin/python3 bench/run.py --fedgate $(abspath $(BUILD)/fedgate) \
		--tools $(abspath $(BUILD)/bench) $(if $(filter 1,$(QUICK)),--quick)

demo: $(BUILD)/fedgate
	$(Q)scripts/deps demo
	$(Q)FEDGATE=$(abspath $(BUILD)/fedgate) /usr/bin/python3 scripts/demo.py

# make deb: $(BUILD)/fedgate_VERSION_ARCH.deb from the tree (scripts/mkdeb, packaging/): the
# binary, fedgate@.service, an example config; Depends by dpkg-shlibdeps. The version is
# control/version.h's, as `fedgate version` says it.
DEB_VERSION := $(shell sed -n 's/^\#define FEDGATE_VERSION "\(.*\)"/\1/p' control/version.h)
DEB := $(BUILD)/fedgate_$(DEB_VERSION)_$(shell dpkg --print-architecture 2>/dev/null).deb
deb: $(DEB)
$(DEB): $(BUILD)/fedgate scripts/mkdeb $(wildcard packaging/*/*) README.md
	$(Q)scripts/deps deb
	$(call msg,DEB,$@)
	$(Q)scripts/mkdeb $(BUILD)/fedgate $(DEB_VERSION) $@

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(FUZZ_PRODUCT:%.c=$(FUZZ)/obj/%.d) \
	$(FUZZ_BINS:=.d)
