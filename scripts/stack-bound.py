#!/usr/bin/env python3
"""Worst-case stack bound of a Cortex-M image from GCC's call graph (-fcallgraph-info=su).

Usage: stack-bound.py <image.elf> <file.ci | dir>... [--verbose]

Method (docs/firmware.md, "Stack bound"):
  * Every function compiled by the project has a node in a .ci file (VCG format, written by
    gcc -fcallgraph-info=su; for an LTO link, by the link step: <image>.ltrans*.ci) with its
    frame size from -fstack-usage. "dynamic" frames without a bound are refused.
  * Functions of prebuilt libraries (newlib-nano, libgcc) have no .ci node: their frame is
    read from the prologue in the image's disassembly (push/stmdb/vpush/sub sp) and their
    callees from its bl/b.w instructions.
  * An indirect call reaches an address-taken function: one whose Thumb address appears as
    a word in the image outside the vector table (vtables, pointer tables, literal pools).
    The called name is read from the source at the call site the .ci file gives: a virtual
    call may reach every address-taken function of that name (all overrides); a known C
    function pointer (POINTERS below) the functions stored in it; any other pointer every
    address-taken function with C linkage. The bound takes the maximum over the targets.
  * A call to a function that no longer exists in the image was inlined: its frame is
    already part of its caller's.
  * The bound is the deepest path from Reset_Handler, plus the deepest exception handler in
    the vector table with its exception frame (108 bytes: the Cortex-M4F extended frame of
    26 words plus alignment), plus one more frame for a fault taken inside that handler.
  * Recursion (a cycle in the graph) makes the bound fail. The cycles the types allow but the
    program never builds (a delta decoder reading another decoder's output; a KickingFlash
    wrapping another) are cut by NOT_TARGETS and NOT_NESTED, documented there.
Prints one line: "stack: <image> bound=<bytes> main=<bytes> isr=<bytes> path=<f1> > <f2> ..."
"""
import glob
import os
import re
import subprocess
import sys

EXC_FRAME = 108
INDIRECT = '__indirect_call@'
# C function pointers called by the linked code, and the functions stored in them (regular
# expressions over symbol names). Any other pointer may reach every address-taken function
# with C linkage.
POINTERS = {
    # mbedtls_memory_buffer_alloc_init (the app), fire::MbedtlsPoolInit (the loader)
    'mbedtls_calloc_func': r'buffer_alloc_calloc|fire_mbedtls_pool_calloc',
    'mbedtls_free_func': r'buffer_alloc_free|fire_mbedtls_pool_free',
    'memset_func': r'memset',  # platform_util.c: volatile pointer to memset
    'modp': r'ecp_mod_p\w*',  # ecp_curves.c: the NIST fast reductions
    'f': r'_GLOBAL__sub_I_\w*',  # startup.cpp: the init arrays (static constructors)
}

NODE_RE = re.compile(r'node: \{ title: "([^"]*)" label: "([^"]*)"')
EDGE_RE = re.compile(r'edge: \{ sourcename: "([^"]*)" targetname: "([^"]*)"(?: label: "([^"]*)")?')
FRAME_RE = re.compile(r'\\n(\d+) bytes \(([^)]*)\)')


def short(title):
    """Node titles are "<object>:<mangled name>"; mangled names hold no ':'."""
    return title.rsplit(':', 1)[-1]


def load_ci(files):
    frames, edges = {}, {}
    for path in files:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                m = NODE_RE.match(line)
                if m:
                    name = short(m.group(1))
                    fm = FRAME_RE.search(m.group(2))
                    if fm is None:
                        continue  # a built-in or external placeholder: resolved from the image
                    size, kind = int(fm.group(1)), fm.group(2)
                    if kind == 'dynamic':
                        sys.exit(f'stack-bound: {name} has an unbounded dynamic frame')
                    frames[name] = max(frames.get(name, 0), size)
                    continue
                m = EDGE_RE.match(line)
                if m:
                    target = short(m.group(2))
                    if target == '__indirect_call':  # one pseudo node per call site
                        target = INDIRECT + (m.group(3) or '?')
                    edges.setdefault(short(m.group(1)), set()).add(target)
    return frames, edges


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def image_functions(elf):
    """Thumb function symbols of the image: address (bit 0 clear) -> names."""
    funcs = {}
    for line in run('arm-none-eabi-readelf', '-sW', elf).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == 'FUNC' and parts[6] != 'UND':
            funcs.setdefault(int(parts[1], 16) & ~1, set()).add(parts[7])
    return funcs


def section_words(elf, sections):
    """(address, word) of every aligned little-endian word in the given sections."""
    out = []
    args = ['arm-none-eabi-objdump', '-s']
    for s in sections:
        args += ['-j', s]
    for line in run(*args, elf).splitlines():
        m = re.match(r'^ ([0-9a-f]+) ((?:[0-9a-f]{2,8} ?){1,4})', line)
        if not m:
            continue
        base = int(m.group(1), 16)
        data = bytes.fromhex(m.group(2).replace(' ', ''))
        for i in range(0, len(data) - 3):
            if (base + i) % 4 == 0:
                out.append((base + i, int.from_bytes(data[i:i + 4], 'little')))
    return out


def disassembly_graph(elf):
    """Frame and callees of every function, read from the disassembly (for library code)."""
    frames, edges, cur, in_prologue = {}, {}, None, False
    for line in run('arm-none-eabi-objdump', '-d', '--no-show-raw-insn', elf).splitlines():
        m = re.match(r'^[0-9a-f]+ <([^>]+)>:$', line)
        if m:
            cur, in_prologue = m.group(1), True
            frames[cur], edges[cur] = 0, set()
            continue
        if cur is None or ':' not in line:
            continue
        insn = line.split(':', 1)[1].strip()
        if in_prologue:
            m = re.match(r'(push|stmdb(?:\.w)?\s+sp!,)\s*\{([^}]*)\}', insn)
            if m:
                frames[cur] += 4 * len(expand_regs(m.group(2)))
            m = re.match(r'vpush\s*\{([^}]*)\}', insn)
            if m:
                regs = expand_regs(m.group(1))
                frames[cur] += sum(8 if r.startswith('d') else 4 for r in regs)
            m = re.match(r'sub(?:\.w)?\s+sp,\s*(?:sp,\s*)?#(\d+)', insn)
            if m:
                frames[cur] += int(m.group(1))
            if re.match(r'(b|bl|bx|cb|blx|pop|ldm)', insn):
                in_prologue = False
        m = re.match(r'(bl|b\.w|b)\s+[0-9a-f]+ <([^>+]+)>', insn)
        if m and m.group(2) != cur:
            edges[cur].add(m.group(2))
    return frames, edges


# Data flow the types allow but the program never builds, so the graph would show recursion:
# (call-site file, called name) -> targets excluded. The only RangeDecoder (inside the
# DeltaDecoder) and the DeltaDecoder itself read the patch from the package in flash
# (AreaSource, package_installer.cpp): a decoder never reads another decoder's output.
NOT_TARGETS = {
    ('range_decoder.cpp', 'Read'): r'_ZN3ota5codec12DeltaDecoder4Read\w*',
    ('delta_decoder.cpp', 'Read'): r'_ZN3ota5codec12DeltaDecoder4Read\w*',
}
# Wrappers that are never nested: function (regular expression) -> the targets no indirect
# call below it reaches. ota::KickingFlash's Do* call the flash it wraps through ota::Flash's
# public methods, whose virtual call may reach every Do* override, KickingFlash's own among
# them; but the Loader only ever wraps the board's drivers (LoaderDevices), never a
# KickingFlash, so below a KickingFlash::Do* the virtual calls reach the drivers alone. The
# wrapper's frames still count once: outer Flash::Read > KickingFlash::DoRead > Flash::Read
# > driver.
NOT_NESTED = {
    r'_ZN3ota12KickingFlash\w*': r'_ZN3ota12KickingFlash\w*',
}


def called_name(site):
    """The name called at an indirect call site "file:line:col": the method or pointer."""
    m = re.match(r'(.*):(\d+):(\d+)$', site)
    if not m or not os.path.exists(m.group(1)):
        return None
    with open(m.group(1), encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    line_no, col = int(m.group(2)), int(m.group(3))
    if line_no > len(lines):
        return None
    text = lines[line_no - 1]
    i = col - 1
    if i < len(text) and text[i] == '(':  # the argument list: the callee ends just before
        before = re.search(r'([A-Za-z_]\w*)[\s)]*$', text[:i])
        return before.group(1) if before else None
    after = re.search(r'[A-Za-z_]\w*', text[i:])
    return after.group(0) if after else None


def base_name(demangled):
    """fire::W25q128::DoRead(unsigned long, ota::Span<unsigned char>) -> DoRead"""
    depth, cut = 0, len(demangled)
    for i, ch in enumerate(demangled):
        if ch == '<':
            depth += 1
        elif ch == '>':
            depth -= 1
        elif ch == '(' and depth == 0:
            cut = i
            break
    return demangled[:cut].split('::')[-1].split('.')[0]


def expand_regs(text):
    regs = []
    for part in text.split(','):
        part = part.strip()
        m = re.match(r'([a-z]+)(\d+)-[a-z]+(\d+)$', part)
        if m:
            regs += [f'{m.group(1)}{i}' for i in range(int(m.group(2)), int(m.group(3)) + 1)]
        elif part:
            regs.append(part)
    return regs


def bound(elf, ci_inputs, verbose=False):
    files = []
    for p in ci_inputs:
        files += sorted(glob.glob(os.path.join(p, '**', '*.ci'), recursive=True)) \
            if os.path.isdir(p) else [p]
    if not files:
        sys.exit(f'stack-bound: no .ci files for {elf}')
    frames, edges = load_ci(files)
    funcs = image_functions(elf)
    in_image = {n for names in funcs.values() for n in names}
    asm_frames, asm_edges = disassembly_graph(elf)

    # Address-taken functions: possible targets of every indirect call.
    vector = section_words(elf, ['.isr_vector'])
    words = section_words(elf, ['.text', '.rodata', '.data', '.init_array'])
    taken = set()
    for _, w in words:
        if w & 1 and (w & ~1) in funcs:
            taken |= funcs[w & ~1]
    taken &= in_image
    demangled = dict(zip(sorted(taken), run('arm-none-eabi-c++filt', *sorted(taken)).splitlines()))
    by_base = {}
    for n in taken:
        by_base.setdefault(base_name(demangled.get(n, n)), set()).add(n)
    # Calls through plain C function pointers (mbedTLS's calloc/free/modp, the init array)
    # may reach any address-taken function with C linkage or a static initialiser.
    c_pointers = {n for n in taken if not n.startswith('_Z')}

    def indirect_targets(site, context):
        name = called_name(site)
        if name in POINTERS:  # a known C function pointer: what the code stores in it
            found = {n for n in taken if re.fullmatch(POINTERS[name], n)}
        elif name in by_base:  # a virtual call: every override of that method
            excluded = NOT_TARGETS.get((os.path.basename(site.split(':')[0]), name))
            found = {n for n in by_base[name] if not (excluded and re.fullmatch(excluded, n))}
        else:
            found = c_pointers
        return {n for n in found if not any(re.fullmatch(x, n) for x in context)}

    memo, stack = {}, []

    def worst(name, context=frozenset()):
        # `context`: targets excluded below a wrapper of NOT_NESTED (part of the memo key).
        key = (name, context)
        if key in memo:
            return memo[key]
        if key in stack:
            cycle = [n for n, _ in stack[stack.index(key):]] + [name]
            sys.exit('stack-bound: recursion: ' + ' > '.join(cycle))
        stack.append(key)
        for wrapper, excluded in NOT_NESTED.items():
            if re.fullmatch(wrapper, name):
                context = context | {excluded}
        if name.startswith(INDIRECT):
            own, callees = 0, indirect_targets(name[len(INDIRECT):], context)
        elif name in frames:
            own, callees = frames[name], edges.get(name, set())
        elif name in in_image:  # library code: from the disassembly
            own, callees = asm_frames.get(name, 0), asm_edges.get(name, set())
        else:  # inlined everywhere: counted in the caller's frame
            own, callees = 0, set()
        best, best_path = 0, []
        for c in sorted(callees):
            d, p = worst(c, context)
            if d > best:
                best, best_path = d, p
        stack.pop()
        memo[key] = (own + best, [name] + best_path)
        return memo[key]

    handlers = set()
    for i, (_, w) in enumerate(vector):
        if i >= 2 and w & 1:
            names = funcs.get(w & ~1, set())
            graph_names = [n for n in names if n in frames] or sorted(names)[:1]
            handlers |= set(graph_names)
    main_depth, main_path = worst('Reset_Handler')
    isr_depth, isr_path = 0, []
    for h in sorted(handlers):
        d, p = worst(h)
        if d + EXC_FRAME > isr_depth:
            isr_depth, isr_path = d + EXC_FRAME, p
    total = main_depth + isr_depth + EXC_FRAME
    if verbose:
        for n in main_path:
            own = frames.get(n, asm_frames.get(n, 0))
            print(f'  {own:6d}  {n}')
        print(f'  indirect-call targets: {len(taken)}; handlers: {" ".join(sorted(handlers))}')
    return total, main_depth, isr_depth, main_path, isr_path


def main():
    args = [a for a in sys.argv[1:] if a != '--verbose']
    if len(args) < 2:
        sys.exit(__doc__)
    elf = args[0]
    total, main_depth, isr_depth, path, isr_path = bound(elf, args[1:], '--verbose' in sys.argv)
    name = os.path.splitext(os.path.basename(elf))[0]
    print(f'stack: {name} bound={total} main={main_depth} isr={isr_depth}+{EXC_FRAME} '
          f'path={" > ".join(path)} isr_path={" > ".join(isr_path)}')


if __name__ == '__main__':
    main()
