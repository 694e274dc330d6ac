# The two commands of the quick start are `make demo` and `make test`; the rest are helpers.
# Every target installs missing Debian packages first (scripts/install-deps.sh).

.PHONY: all deps build test test-host test-asan cross test-long bench-upgrade format format-check clean

JOBS ?= $(shell nproc)

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset host >/dev/null
	@cmake --build --preset host -j $(JOBS)

# The whole suite: host tests, the device library's tests under ASan+UBSan, the Cortex-M4
# cross build of the device library, and formatting. Fails on the first failure.
test: deps
	@$(MAKE) --no-print-directory test-host test-asan cross format-check
	@echo "make test: all passed"

# The power-cut sweeps' summary lines are shown after the run (CTest captures test output).
test-host: build
	@ctest --preset host
	@grep -h '^powercut:' build/host/Testing/Temporary/LastTest.log || true

test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan

# The device library must build for the board from every commit: nothing host-only creeps in.
cross: deps
	@cmake --preset cortex-m4 >/dev/null
	@cmake --build --preset cortex-m4 -j $(JOBS)
	@arm-none-eabi-size -t build/cortex-m4/device/libota_device.a | tail -1 | \
	  awk '{print "cortex-m4: device library text=" $$1 " data=" $$2 " bss=" $$3}'
	@scripts/check-device-symbols.sh build/cortex-m4/device/libota_device.a \
	  build/cortex-m4/boards/libota_boards.a

# Long runs kept out of `make test`: full-size power-cut sweeps.
test-long: build
	@ctest --preset long
	@grep -h '^powercut:' build/host/Testing/Temporary/LastTest.log || true

bench-upgrade: build
	@build/host/bench/upgrade_time

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

format-check:
	@git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp' | \
	  xargs clang-format --dry-run --Werror && echo "format: ok"

clean:
	rm -rf build
