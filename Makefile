# fedgate: non-recursive build. `make V=1` shows commands, `make SANITIZE=1`
# builds with ASan+UBSan into build/san.
CC ?= cc
BUILD := build
CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -MMD -MP
LDFLAGS :=
LDLIBS := -lssl -lcrypto -lgcrypt -luring -lcjson -lpthread
ifeq ($(SANITIZE),1)
BUILD := build/san
CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

SRCS := $(wildcard control/*.c dataplane/*.c)
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(filter-out $(BUILD)/control/main.c.o $(BUILD)/control/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
DEPS_STAMP := build/.deps-build

.PHONY: all deps test demo clean unit bench
all: $(BUILD)/fedgate

# The first build installs what is missing (as root) or says what to install.
$(DEPS_STAMP): scripts/deps
	$(Q)scripts/deps build
	$(Q)mkdir -p $(@D) && touch $@
deps: $(DEPS_STAMP)

# bpf/*.bpf.c: sockmap programs, by clang from UAPI headers only (no vmlinux.h: bpf/README.md),
# then a libbpf skeleton that bpf/sockmap.c includes (-I$(BUILD)/bpf).
BPF_CC ?= clang
BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror -Ibpf -I/usr/include/$(shell $(CC) -dumpmachine)
CFLAGS += -I$(BUILD)/bpf
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c bpf/redirect.h | $(DEPS_STAMP)
	$(call msg,BPF,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPF_CC) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)bpftool gen skeleton $< name $(notdir $*) >$@.tmp && mv $@.tmp $@
.PRECIOUS: $(BUILD)/bpf/%.bpf.o
# bpf/sockmap.c loads them. It is not in fedgate yet: the kernels at hand refuse kTLS on a
# socket in a sockmap (bpf/README.md), so only the test fixture links it.
$(BUILD)/bpf/sockmap.o: $(BUILD)/bpf/redirect.skel.h
# The sockmap test fixture and experiment (bpf/README.md), driven by tests/test_sockmap.py.
$(BUILD)/tests/sockmap_check: bpf/experiments/sockmap_check.c $(BUILD)/bpf/sockmap.o \
		$(BUILD)/bpf/experiments/naive.skel.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -I$(BUILD)/bpf/experiments $< \
		$(BUILD)/bpf/sockmap.o $(LDFLAGS) -lbpf $(LDLIBS) -o $@
all test: $(BUILD)/tests/sockmap_check

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/fedgate: $(OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -Itests/unit $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -o $@

unit: $(UNIT_BINS)

test: $(BUILD)/fedgate $(UNIT_BINS) $(BUILD)/bench/aead
	$(Q)scripts/deps test
	$(Q)FEDGATE=$(abspath $(BUILD)/fedgate) UNIT_DIR=$(abspath $(BUILD)/tests) \
		/usr/bin/python3 -m pytest -p no:cacheprovider -q $(or $(PYTEST_ARGS),tests)

# bench/*.c: the load and sink tools of `make bench` (QUICK=1: plain, fedgate, stunnel only).
BENCH_BINS := $(addprefix $(BUILD)/bench/,echod pingpong conns aead)
$(BUILD)/bench/%: bench/%.c | $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $< -o $@

# aead times fedgate's own record layer, so it links it.
$(BUILD)/bench/aead: bench/aead.c $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -o $@

bench: $(BUILD)/fedgate $(BENCH_BINS)
	$(Q)scripts/deps bench
	$(Q)/usr/bin/python3 bench/run.py --fedgate $(abspath $(BUILD)/fedgate) \
		--tools $(abspath $(BUILD)/bench) $(if $(filter 1,$(QUICK)),--quick)

demo: $(BUILD)/fedgate
	$(Q)scripts/deps demo
	$(Q)FEDGATE=$(abspath $(BUILD)/fedgate) /usr/bin/python3 scripts/demo.py

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(BUILD)/bpf/sockmap.d
