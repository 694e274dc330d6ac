#!/usr/bin/env bash
# Prints the suite's closing line, `tests: N passed, N failed`, from the CTest logs of the
# builds given as arguments (build/host build/asan ...).
set -euo pipefail
passed=0
failed=0
for dir in "$@"; do
  log="$dir/Testing/Temporary/LastTest.log"
  [[ -f "$log" ]] || continue
  passed=$((passed + $(grep -c '^Test Passed' "$log" || true)))
  failed=$((failed + $(grep -c '^Test Failed' "$log" || true)))
done
echo "tests: $passed passed, $failed failed"
