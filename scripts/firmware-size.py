#!/usr/bin/env python3
"""Sizes, loader breakdown and budget check of the stm32f429-fire images (`make cross`).

Usage: firmware-size.py <build/cortex-m4/firmware> [--no-loader]
(--no-loader: the loader was not linked, for want of mbedTLS's source; only the apps.)

Prints, per image (loader, appv1, appv2):
  size: <image> text=<bytes> data=<bytes> bss=<bytes> stack=<bytes>
where text is everything the image keeps in flash besides .data's initial values (vector
table, code, constants, the app's image header), data the initialised RAM (also stored in
flash), bss the zeroed RAM without the stack, and stack the worst-case bound of
scripts/stack-bound.py. Then the loader's flash by origin:
  size: loader breakdown own=<bytes> crypto=<bytes> decoder=<bytes> libc=<bytes> other=<bytes>
(own: device library, board port and loader; crypto: mbedTLS; decoder: the delta codec;
libc: newlib-nano, libgcc and the loader's own memcpy & co. (firmware/loader_libc.c); other:
what no symbol names, i.e. string literals, switch tables and alignment); `budget:` lines give each figure against its limit. Exits non-zero when a budget is exceeded (docs/firmware.md):
  loader flash (text + data, and the binary objcopy writes, gaps included) <= 32 KB,
  loader RAM (data + bss + stack) <= 32 KB,
  the stack bound within the stack the linker script reserves,
  an app image (the binary: vector table to _image_end) + its 32-byte SHA-256 trailer
  <= its 512 KB slot.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
stack_bound = __import__('stack-bound')

KB = 1024
LOADER_FLASH_BUDGET = 32 * KB
LOADER_RAM_BUDGET = 32 * KB
APP_SLOT = 512 * KB
IMAGE_TRAILER = 32
FLASH_BASE = 0x08000000
FLASH_END = 0x08200000


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def sections(elf):
    """name -> (size, address, flags) of the allocated sections."""
    out = {}
    for line in run('arm-none-eabi-readelf', '-SW', elf).splitlines():
        m = re.match(r'\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)'
                     r'\s+\S+\s+(\S*)', line)
        if m and 'A' in m.group(5):
            out[m.group(1)] = (int(m.group(4), 16), int(m.group(3), 16), m.group(5), m.group(2))
    return out


def measure(elf):
    secs = sections(elf)
    text = data = bss = reserved_stack = 0
    for name, (size, addr, flags, kind) in secs.items():
        if name == '.stack':
            reserved_stack = size
        elif kind == 'NOBITS':
            bss += size
        elif 'W' in flags:
            data += size
        else:
            text += size
    total, *_ = stack_bound.bound(elf, [elf + '.ltrans0.ltrans.ci'])
    # The bytes objcopy writes: from the first flash section to _image_end (sections.ld),
    # gaps included (vector table to image header, alignment).
    start = min(addr for size, addr, flags, kind in secs.values()
                if FLASH_BASE <= addr < FLASH_END and kind != 'NOBITS')
    end = start + text + data
    for line in run('arm-none-eabi-nm', elf).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == '_image_end':
            end = int(parts[0], 16)
    return text, data, bss, total, reserved_stack, end - start


def category(name, path):
    if path:
        if '/mbedtls' in path:
            return 'crypto'
        if '/codec/' in path:
            return 'decoder'
        if '/newlib' in path or '/libgcc' in path or '/loader_libc.c' in path:
            return 'libc'
        return 'own'
    if re.fullmatch(r'K|secp256r1_\w+|mbedtls\w*', name):
        return 'crypto'
    if '5codec' in name:
        return 'decoder'
    if name.startswith('CSWTCH'):
        return 'other'  # switch tables: the compiler does not say whose
    return 'own'


def breakdown(elf, flash_bytes):
    sums = {'own': 0, 'crypto': 0, 'decoder': 0, 'libc': 0}
    seen = set()
    for line in run('arm-none-eabi-nm', '-S', '-l', '--defined-only', elf).splitlines():
        m = re.match(r'^([0-9a-f]+) ([0-9a-f]+) \w (\S+)(?:\t(.*))?$', line)
        if not m:
            continue  # no size: an alias or a label
        addr, size, name, path = int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4)
        if not FLASH_BASE <= addr < FLASH_END or (addr, size) in seen:
            continue
        seen.add((addr, size))  # aliases (the weak handlers) count once
        cat = category(name, path)
        if cat in sums:
            sums[cat] += size
    sums['other'] = flash_bytes - sum(sums.values())
    return sums


def main():
    args = [a for a in sys.argv[1:] if a != '--no-loader']
    if len(args) != 1:
        sys.exit(__doc__)
    d = args[0]
    failures = []
    images = ('appv1', 'appv2') if '--no-loader' in sys.argv else ('loader', 'appv1', 'appv2')
    if '--no-loader' in sys.argv:
        print('size: WARNING: loader.elf not linked (no mbedTLS source): its budget is unchecked')
    for image in images:
        elf = os.path.join(d, image + '.elf')
        if not os.path.exists(elf):
            failures.append(f'{image}.elf was not built')
            continue
        text, data, bss, stack, reserved, extent = measure(elf)
        print(f'size: {image} text={text} data={data} bss={bss} stack={stack}')
        if stack > reserved:
            failures.append(f'{image}: stack bound {stack} > the {reserved} bytes reserved')
        if image == 'loader':
            b = breakdown(elf, text + data)
            print('size: loader breakdown ' + ' '.join(f'{k}={v}' for k, v in b.items()))
            if max(text + data, extent) > LOADER_FLASH_BUDGET:
                failures.append(f'loader flash {text + data} (binary {extent}) > '
                                f'{LOADER_FLASH_BUDGET}')
            if data + bss + stack > LOADER_RAM_BUDGET:
                failures.append(f'loader RAM {data + bss + stack} > {LOADER_RAM_BUDGET}')
            print(f'budget: loader flash={text + data}/{LOADER_FLASH_BUDGET} binary={extent} '
                  f'ram={data + bss + stack}/{LOADER_RAM_BUDGET}')
        elif extent + IMAGE_TRAILER > APP_SLOT:
            failures.append(f'{image}: {extent} + trailer > the {APP_SLOT}-byte slot')
        else:
            print(f'budget: {image} image={extent}+{IMAGE_TRAILER}/{APP_SLOT}')
    for f in failures:
        print(f'size: BUDGET EXCEEDED: {f}', file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
