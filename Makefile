# fedgate: non-recursive build. `make V=1` shows commands, `make SANITIZE=1`
# builds with ASan+UBSan into build/san.
CC ?= cc
BUILD := build
CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -MMD -MP
LDFLAGS :=
LDLIBS := -lssl -lcrypto -luring -lcjson -lpthread
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

.PHONY: all deps test demo clean unit
all: $(BUILD)/fedgate

# The first build installs what is missing (as root) or says what to install.
$(DEPS_STAMP): scripts/deps
	$(Q)scripts/deps build
	$(Q)mkdir -p $(@D) && touch $@
deps: $(DEPS_STAMP)

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

test: $(BUILD)/fedgate $(UNIT_BINS)
	$(Q)scripts/deps test
	$(Q)FEDGATE=$(abspath $(BUILD)/fedgate) UNIT_DIR=$(abspath $(BUILD)/tests) \
		/usr/bin/python3 -m pytest -p no:cacheprovider -q $(or $(PYTEST_ARGS),tests)

demo: $(BUILD)/fedgate
	$(Q)scripts/deps demo
	$(Q)FEDGATE=$(abspath $(BUILD)/fedgate) /usr/bin/python3 scripts/demo.py

clean:
	rm -rf build

-include $(OBJS:.o=.d)
