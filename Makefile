# bordergate — one Makefile: deps, all, test, run, bench, fuzz, clean.
# SANITIZE=address,undefined builds and tests everything under sanitizers.

CC       ?= cc
BUILD    ?= build
PKGS     := libuv libnghttp2 openssl libmaxminddb yaml-0.1 zlib
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Isrc -Iproxy -pthread \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -luring -pthread -lm
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS   += -DBG_VERSION='"$(VERSION)"'

SRC      := $(wildcard src/*.c)
PROXY    := $(filter-out proxy/main.c,$(wildcard proxy/*.c))
LIBOBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(SRC) $(PROXY))
UNIT     := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(filter-out tests/unit/test.c,$(wildcard tests/unit/*.c)))
TOOLS    := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
HEADERS  := $(wildcard src/*.h proxy/*.h tests/unit/*.h)

# Debian packages: libraries, then the tools the tests and benchmarks drive.
DEB_PKGS := build-essential pkg-config libuv1-dev libnghttp2-dev libssl-dev libmaxminddb-dev \
            libyaml-dev zlib1g-dev liburing-dev curl nghttp2-client nginx-light python3 openssl prometheus clang mmdb-bin xxd

.PHONY: all deps test unit run clean bench fuzz certs geoip-update demo
all: $(BUILD)/bordergate $(TOOLS)

deps:
	@sh tests/tools/deps.sh $(DEB_PKGS)

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libbg.a: $(LIBOBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bordergate: $(BUILD)/obj/proxy/main.o $(BUILD)/libbg.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c tests/unit/test.c $(BUILD)/libbg.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< tests/unit/test.c $(BUILD)/libbg.a $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libbg.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libbg.a $(LDLIBS)

unit: $(UNIT)

test: deps
	@$(MAKE) --no-print-directory all unit
	@BUILD=$(BUILD) sh tests/run.sh

certs:
	@sh certs/gen-certs.sh certs

run: deps
	@$(MAKE) --no-print-directory all
	@sh certs/gen-certs.sh certs
	@sh certs/gen-key.sh config/keys k1 >/dev/null
	@mkdir -p records
	$(BUILD)/bordergate run -c config/bordergate.yaml

geoip-update:
	@sh config/geoip/update.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/tools/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/compare.sh

# libFuzzer targets: tests/fuzz/<name>.c → build-fuzz/<name>
FUZZ     := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/*.c))
fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ)
build-fuzz/%: tests/fuzz/%.c $(SRC) $(PROXY) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Iproxy -DBG_VERSION='"fuzz"' \
	  $(shell pkg-config --cflags $(PKGS)) -o $@ $< $(SRC) $(PROXY) $(LDLIBS)

clean:
	rm -rf $(BUILD) build-fuzz
