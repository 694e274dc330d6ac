#!/usr/bin/env bash
# Fails if cross-compiled device code reaches for the heap, exceptions or RTTI: those must
# never creep into the firmware, whatever the host build gets away with. In a linked image,
# newlib's allocator shows by its state (__malloc_free_list, __malloc_sbrk_start, _sbrk_r).
set -euo pipefail
forbidden='^(malloc|free|calloc|realloc|__malloc_free_list|__malloc_sbrk_start|_sbrk_r|_Znw|_Zna|_Zdl|_Zda|__cxa_throw|__cxa_allocate_exception|__cxa_begin_catch|__gxx_personality|_ZTI|_ZTS|__dynamic_cast)'
status=0
for lib in "$@"; do
  if [[ "$lib" == *.elf ]]; then  # a linked image (after LTO): what it defines
    bad=$(arm-none-eabi-nm --defined-only "$lib" | awk '{print $3}' | grep -E "$forbidden" | sort -u || true)
  else
    bad=$(arm-none-eabi-nm -u "$lib" | awk '$1 == "U" {print $2}' | grep -E "$forbidden" | sort -u || true)
  fi
  if [[ -n "$bad" ]]; then
    echo "check-device-symbols: $lib uses heap/exceptions/RTTI:" >&2
    echo "$bad" | sed 's/^/  /' >&2
    status=1
  fi
done
[[ $status -eq 0 ]] && echo "cortex-m4: no heap, exceptions or RTTI in $# device libraries and images"
exit $status
