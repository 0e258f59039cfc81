# The two commands: `make run` and `make test`. Everything else is a convenience.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
ARGS       ?=
FUZZ_SECONDS ?= 120

.PHONY: all deps build run test test-asan bench fuzz format clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/pylon serve $(ARGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 1 $(ARGS)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYLON_SANITIZE=ON

test-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j 1 -E fuzz_smoke $(ARGS)

# Micro-benchmarks, then the side-by-side suite (bench/run.py; docs/benchmarks.md): about 22 minutes
# on a 2-core machine at the default 3 rounds (32 at BENCH_ROUNDS=5). It writes bench/results/<date>-<case>.json and the Markdown for
# docs/benchmarks.md, top table included, to bench/results/<date>-summary.md. Knobs, from the
# command line or the environment: BENCH_DURATION=3 (seconds measured per run, default 8),
# BENCH_ROUNDS=3 (echo and churn: rounds interleaved over the servers, the median kept),
# BENCH_WARMUP, BENCH_CASES=echo-100x16x8,churn-50 (or all), BENCH_SERVERS=pylon,uWebSockets (or
# all: adds Boost.Beast, websocketpp, gorilla, Node ws), BENCH_CLIENT=echo_client,
# BENCH_PYLON_LOG_LEVEL=info (default warn), BENCH_MICRO=0 (skip the micro-benchmarks). Then TLS
# side by side (bench/tls.py: pylon native TLS, uWebSockets with OpenSSL, Nginx in front; about 7
# minutes a round, BENCH_ROUNDS too), BENCH_TLS=0 skips it.
bench: build
	@if [ "$${BENCH_MICRO:-1}" != 0 ]; then \
	  $(BUILD)/bench/pylon_micro_bench --benchmark_out=bench/results/micro-latest.json --benchmark_out_format=json; fi
	/usr/bin/python3 bench/run.py --pylon $(BUILD)/pylon
	@if [ "$${BENCH_TLS:-1}" != 0 ]; then /usr/bin/python3 bench/tls.py --pylon $(BUILD)/pylon; fi

fuzz: deps
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	scripts/format.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# The whole topology on this machine (deploy/local/stack.sh): Nginx with TLS on 8443/8880, three
# pylon instances on 9001-9003, Prometheus and Alertmanager; state in .stack/. With PYLON_BIN
# set, that binary is used and nothing is built. STACK_ENGINE=redis adds a redis-server on 9379
# and runs the instances on the Redis engine (docs/deployment.md, step 0).
.PHONY: stack stack-down
stack: $(if $(PYLON_BIN),,build)
	@deploy/local/stack.sh up

stack-down:
	@deploy/local/stack.sh down
