# The two commands of the quick start are `make demo` and `make test`; the rest are helpers.
# Every target installs missing Debian packages first (scripts/install-deps.sh).

# The Cortex-M4 images are used when they can be built (they need mbedTLS's source package);
# otherwise the demo makes app images the simulator can run.
demo: build
	@$(MAKE) --no-print-directory firmware || echo "demo: no Cortex-M4 images; using synthetic ones"
	@scripts/demo.sh build/host

.PHONY: all demo deps build test test-host test-asan cross firmware m4-crypto-check m4-app-check m4-check m4-board-check powercut-m4 powercut-m4-double powercut-m4-full fuzz fuzz-build fuzz-run fuzz-smoke fuzz-smoke-short fuzz-smoke-delta test-long bench-upgrade bench-delta bench-package bench-platform bench-fleet bench-connect-storm format \
        format-check clean

JOBS ?= $(shell nproc)

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset host >/dev/null
	@cmake --build --preset host -j $(JOBS)

# The whole suite: the board images (cross build with its budget test, stamped by the host
# tool: the firmware tests need them), the images on an emulated Cortex-M4, host tests, the
# device library's tests under ASan+UBSan, fuzzing, and formatting. Fails on the first failure.
test: deps
	@$(MAKE) --no-print-directory firmware m4-check m4-board-check test-host test-asan fuzz-smoke format-check
	@scripts/test-summary.sh build/host build/asan

# The firmware's and the console's summary lines are shown after the run (CTest captures test
# output). The power-cut sweeps run once, under the sanitizers (test-asan), not here too.
test-host: build
	@ctest --preset host
	@grep -hE '^(firmware|console|devices-page):' build/host/Testing/Temporary/LastTest.log || true

test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target device-tests
	@ctest --preset asan
	@grep -hE '^powercut:' build/asan/Testing/Temporary/LastTest.log || true

# The device library must build for the board from every commit: nothing host-only creeps in.
# The loader links mbedTLS's SHA-256 and ECDSA built from Debian's source package (fetched
# once into build/third_party); without it only the device library and the apps are built.
# Then the budget test (docs/firmware.md): one `size:` line per image and the loader's
# breakdown; fails if the loader passes 32 KB of flash or of RAM, or an app its 512 KB slot.
cross: deps
	@src=$$(scripts/fetch-mbedtls-source.sh) || { \
	  echo "cross: WARNING: no mbedTLS source (apt-get source mbedtls failed): loader.elf not linked"; \
	  src=; }; \
	cmake --preset cortex-m4 -DOTA_MBEDTLS_SOURCE_DIR="$$src" >/dev/null
	@cmake --build --preset cortex-m4 -j $(JOBS)
	@arm-none-eabi-size -t build/cortex-m4/device/libota_device.a | tail -1 | \
	  awk '{print "cortex-m4: device library text=" $$1 " data=" $$2 " bss=" $$3}'
	@arm-none-eabi-size -t build/cortex-m4/device/CMakeFiles/ota_device.dir/src/codec/*.obj | tail -1 | \
	  awk '{print "cortex-m4: codec decoder (delta + range decoder, -Os Thumb) text=" $$1 " data=" $$2 " bss=" $$3}'
	@scripts/check-device-symbols.sh build/cortex-m4/device/libota_device.a \
	  build/cortex-m4/boards/libota_boards.a build/cortex-m4/firmware/libota_fire_port.a \
	  $$(ls build/cortex-m4/firmware/*.elf 2>/dev/null)
	@scripts/firmware-size.py build/cortex-m4/firmware \
	  $$([ -f build/cortex-m4/firmware/loader.elf ] || echo --no-loader)

# The images for the board in build/firmware/: loader.bin as linked, appv1.bin and appv2.bin
# stamped with versions FOTAV1 and FOTAV2 by the host `ota stamp` (the unstamped binaries stay
# in build/cortex-m4/firmware/). Needs the loader, so mbedTLS's source (see `cross`).
FIRMWARE_DIR := build/firmware
firmware: cross build
	@[ -f build/cortex-m4/firmware/loader.bin ] || { \
	  echo "firmware: loader.bin was not linked (no mbedTLS source)"; exit 1; }
	@mkdir -p $(FIRMWARE_DIR)
	@cp build/cortex-m4/firmware/loader.bin $(FIRMWARE_DIR)/loader.bin
	@for v in 1 2; do \
	  out=$$(build/host/tools/ota stamp build/cortex-m4/firmware/appv$$v.bin \
	    --version FOTAV$$v -o $(FIRMWARE_DIR)/appv$$v.bin) || exit 1; \
	  echo "firmware: $$out"; \
	done
	@echo "firmware: $(FIRMWARE_DIR)/loader.bin $$(stat -c %s $(FIRMWARE_DIR)/loader.bin) bytes"

# The loader's signature check as built for the board, run on an emulated Cortex-M4 (QEMU
# netduinoplus2) against OpenSSL signatures.
m4-crypto-check: cross
	@tests/firmware/m4_crypto_check.sh build/cortex-m4/firmware/m4_crypto_check.elf

# The stamped apps on the same emulated Cortex-M4, their shell driven over the USART1 console.
m4-app-check: firmware
	@tests/firmware/m4_app_check.sh $(FIRMWARE_DIR)

# Both QEMU checks (in `make test`): a few seconds once the images are built.
m4-check: m4-crypto-check m4-app-check

# The real loader.bin and appv1.bin on the emulated FIRE board (sim/m4 on Unicorn 2,
# docs/m4-board.md): a cold boot into the app, the drivers checked against the datasheets by
# the peripheral models, the models' own rules, and the whole board upgraded FOTAV1->FOTAV2 by
# a real platform (a full and a diff package through Mosquitto and ota-server, the modem on
# USART3: sim/ota-device/tests, ~50 s) (part of `make test`). Prints the `m4-board:` lines
# (instructions, emulated time, MIPS); the whole output on a failure.
m4-board-check: firmware
	@cmake --build --preset host -j $(JOBS) --target ota_m4_board_tests
	@out=$$(OTA_FIRMWARE_DIR=$(FIRMWARE_DIR) build/host/sim/m4/tests/ota_m4_board_tests 2>&1); \
	  rc=$$?; \
	  if [ $$rc -ne 0 ]; then echo "$$out"; exit $$rc; fi; \
	  echo "$$out" | grep -E '^m4-board: (cold|blank|provision|flash|w25q)|^\[  PASSED'
	@cmake --build --preset host -j $(JOBS) --target ota_m4_upgrade_tests
	@out=$$(OTA_FIRMWARE_DIR=$(FIRMWARE_DIR) build/host/sim/ota-device/tests/ota_m4_upgrade_tests 2>&1); \
	  rc=$$?; \
	  if [ $$rc -ne 0 ]; then echo "$$out"; exit $$rc; fi; \
	  echo "$$out" | grep -E '^m4-board: (upgrade|full|diff)|^\[  PASSED'
	@$(MAKE) --no-print-directory powercut-m4

# The power-cut sweep on the real loader.bin (docs/m4-board.md, "Power-cut sweep"): the
# scenarios of tests/powercut, each operation cut and torn. `powercut-m4` (in m4-board-check,
# so in `make test`) runs a stratified seeded sample: per scenario one operation of each kind
# it performs outside image data (internal sector erase, trust record, OTP, option bytes,
# W25Q128 erase, boot-state records, the app's confirmation) and one of each kind of image
# data (the slot's word programs, the backup's page programs), plus
# POWERCUT_M4_SAMPLES more (the seed is printed; POWERCUT_M4_SEED=<n> replays it), and the
# double cut (a second cut during the recovery) after POWERCUT_M4_DOUBLE_SAMPLES first cuts of
# full-install and target-mismatch-recover (`powercut-m4-double` runs only those);
# `powercut-m4-full` every operation but the image data, and of that every
# POWERCUT_M4_STRIDE-th word or page (1: all of it; hours to days).
POWERCUT_M4_SAMPLES ?= 0
POWERCUT_M4_DOUBLE_SAMPLES ?= 2
POWERCUT_M4_STRIDE ?= 512
POWERCUT_M4_ENV = OTA_FIRMWARE_DIR=$(FIRMWARE_DIR) OTA_POWERCUT_M4_JOBS=$(JOBS) \
  $(if $(POWERCUT_M4_SEED),OTA_POWERCUT_M4_SEED=$(POWERCUT_M4_SEED)) \
  OTA_POWERCUT_M4_DOUBLE_SAMPLES=$(POWERCUT_M4_DOUBLE_SAMPLES)
# The sweep's test binary, its figures printed (the whole output on a failure); $(1): a filter.
define powercut_m4_run
	@cmake --build --preset host -j $(JOBS) --target ota_m4_powercut_tests
	@out=$$($(POWERCUT_M4_ENV) OTA_POWERCUT_M4_SAMPLES=$(POWERCUT_M4_SAMPLES) \
	  build/host/sim/m4/tests/ota_m4_powercut_tests $(1) 2>&1); \
	  rc=$$?; \
	  if [ $$rc -ne 0 ]; then echo "$$out"; exit $$rc; fi; \
	  echo "$$out" | grep -E '^powercut-m4(-double)?: |^\[  PASSED'
endef

powercut-m4:
	$(call powercut_m4_run,)

powercut-m4-double:
	$(call powercut_m4_run,--gtest_filter='PowerCutM4.DoubleCut_*')

powercut-m4-full: firmware
	@cmake --build --preset host -j $(JOBS) --target ota_m4_powercut_tests
	@{ $(POWERCUT_M4_ENV) OTA_POWERCUT_M4_FULL=1 OTA_POWERCUT_M4_STRIDE=$(POWERCUT_M4_STRIDE) \
	  build/host/sim/m4/tests/ota_m4_powercut_tests; echo $$? > build/powercut-m4-full.rc; } \
	  2>&1 | tee build/powercut-m4-full.log | \
	  grep --line-buffered -E '^powercut-m4|replay:|^\[ *(OK|FAILED|PASSED) *\]'; \
	  echo "powercut-m4-full: whole output in build/powercut-m4-full.log"; \
	  exit $$(cat build/powercut-m4-full.rc)

# libFuzzer over every parser of untrusted input: FUZZ_SECONDS each (corpus in build/fuzz).
FUZZ_TARGETS := boot_record delta_decoder esp_at_modem image_header package range_decoder
FUZZ_SECONDS ?= 60
fuzz: fuzz-build
	@$(MAKE) --no-print-directory fuzz-run

fuzz-build: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)

fuzz-run:
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build/fuzz/corpus/$$t $$([ -d fuzz/seeds/$$t ] && echo fuzz/seeds/$$t) 2>build/fuzz/$$t.log || { tail -40 build/fuzz/$$t.log; exit 1; }; \
	  grep -h 'number_of_executed_units' build/fuzz/$$t.log | sed "s/^/fuzz: $$t /"; \
	done

# The short run inside `make test`: 10 s per target, and a minute for the delta decoder, the
# parser with the largest state space, on the other core at the same time.
fuzz-smoke: fuzz-build
	@$(MAKE) --no-print-directory -j 2 fuzz-smoke-short fuzz-smoke-delta

fuzz-smoke-short:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=10 FUZZ_TARGETS="boot_record esp_at_modem image_header package range_decoder"

fuzz-smoke-delta:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=60 FUZZ_TARGETS=delta_decoder

# Long runs kept out of `make test`: full-size power-cut sweeps.
test-long: build
	@ctest --preset long
	@grep -h '^powercut:' build/host/Testing/Temporary/LastTest.log || true

bench-upgrade: build
	@build/host/bench/upgrade_time

# Package overhead and verification times for a 512 KB package.
bench-package: build
	@build/host/bench/package_bench

# Connect rate through the auth plugin, property ingest, HTTPS download throughput.
bench-platform: build
	@build/host/bench/platform_bench $(DEVICES)

# A campaign over BOARDS simulated boards through one broker and one platform, per-stage
# figures and Mosquitto's password_file as the connect storm's peer (scripts/bench-fleet.sh).
BOARDS ?= 10000
bench-fleet: build
	@scripts/bench-fleet.sh build/host $(BOARDS)

# The connect storm alone at BOARDS (default 20000) against one broker: where it breaks.
bench-connect-storm: build
	@scripts/bench-connect-storm.sh build/host $(if $(filter command line,$(origin BOARDS)),$(BOARDS),20000)

# Patch sizes against bsdiff, xdelta3 and zstd on ../shared/firmware-pairs and PAIRS=dirs.
bench-delta: build
	@build/host/bench/delta_bench $(PAIRS)

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

format-check:
	@git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp' | \
	  xargs clang-format --dry-run --Werror && echo "format: ok"

clean:
	rm -rf build
