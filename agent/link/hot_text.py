#!/usr/bin/env python3
"""Turns callgrind runs of the agent into agent/link/hot-text.ld.

    hot_text.py names BINARY TOOL OUTPUT > NAMES
    hot_text.py ld OUT.ld MODE:NAMES [...]

`names` lists the functions of BINARY that ran, while BINARY is still the
one that ran (the next link moves them). TOOL is callgrind (OUTPUT names every function that ran) or perf (OUTPUT is
`perf record -e page-faults -d`: each fault on code names the function whose
page was not mapped yet). BINARY must have its symbol table. Each of those
functions becomes one section pattern; the hash that rustc
appends to legacy names ("17h<16 hex>E") and the crate hashes of v0 names
("Cs<...>_") are wildcards, so one list serves builds with other hashes
(another target, profile or compiler). Patterns are grouped by the modes
they ran in (common first, then Extension, Full, TLS) so that each mode's
hot code is contiguous. Run from agent/link/profile-hot-text.sh.
"""
import bisect
import re
import subprocess
import sys

GROUPS = [
    ("run in every mode", lambda m: {"extension", "full"} <= m),
    ("Extension mode", lambda m: "extension" in m),
    ("Full mode", lambda m: "full" in m),
    ("TLS to the core", lambda m: "tls" in m),
]


def symbols(binary):
    out = subprocess.run(["nm", "-S", "--defined-only", binary],
                         capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    syms.sort()
    return syms


def executed(callgrind_out, binary, main_addr):
    """File addresses of the instructions of `binary` that ran. Valgrind
    loads a PIE binary at its own base: the offset is where `main` ran.
    It names the binary's object "???" at times (a static executable, or
    one linked with hot-text.ld): addresses of "???" count too, and only
    those that fall in one of the binary's functions are kept."""
    name = "/" + binary.rsplit("/", 1)[-1]
    names, fns = {}, {}
    current, function, addr, seen, bias = None, None, 0, set(), None
    for line in open(callgrind_out, errors="replace"):
        m = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, ident, label = m.groups()
            table = names if kind.endswith("ob") else fns
            if label:
                table[ident] = label
            if kind == "ob":
                current = names.get(ident)
            elif kind == "fn":
                function = fns.get(ident)
            continue
        m = re.match(r"^(0x[0-9a-f]+|[+-]\d+|\*)\s", line)
        if m:
            t = m.group(1)
            if t.startswith("0x"):
                addr = int(t, 16)
            elif t != "*":
                addr += int(t)
            if current and (current.endswith(name) or current == "???"):
                seen.add(addr)
                if function == "main" and bias is None:
                    bias = addr - main_addr
    if bias is None:
        sys.exit(f"{callgrind_out}: main of {binary} never ran")
    return {a - bias for a in seen}


def faulted(perf_data, binary):
    """Symbols of `binary` whose code page faulted (address = ip)."""
    out = subprocess.run(["perf", "script", "-i", perf_data, "-F", "addr,ip,sym,dso",
                          "--no-demangle"], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9a-f]+) (\S+) \((.+?)\)\s+([0-9a-f]+) (\S+) \((.+?)\)$", line)
        if m and m.group(1) == m.group(4) and m.group(6) == binary and m.group(5) != "[unknown]":
            names.add(m.group(5))
    return names


def pattern(symbol):
    """A glob for `symbol` in any build: without the hashes, which change
    with the target, profile and compiler, nor v0 back-references, which
    are offsets into the name and move when a hash is shorter."""
    symbol = re.sub(r"\.llvm\.\d+$", "", symbol)
    symbol = re.sub(r"17h[0-9a-f]{16}E$", "17h*", symbol)
    if symbol.startswith("_R"):
        symbol = re.sub(r"Cs[0-9a-zA-Z]+_", "Cs*_", symbol)
        symbol = re.sub(r"B[0-9a-zA-Z]*_", "B*_", symbol)
    return symbol


def main_of(syms):
    return next(s[0] for s in syms if s[2] == "main")


def ran_in(syms, addresses):
    """The symbols that the addresses fall in, in address order."""
    starts = [s[0] for s in syms]
    ran = []
    for a in sorted(addresses):
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and syms[i][0] <= a < syms[i][0] + max(syms[i][1], 1):
            if not ran or ran[-1] != syms[i][2]:
                ran.append(syms[i][2])
    return list(dict.fromkeys(ran))


def names(binary, tool, output):
    if tool == "perf":
        ran = sorted(faulted(output, binary))
    else:
        syms = symbols(binary)
        ran = ran_in(syms, executed(output, binary, main_of(syms)))
    for symbol in ran:
        print(symbol)


def write_ld(out_path, runs):
    modes = {}  # pattern -> set of modes
    order = []  # first-seen order
    for run in runs:
        mode, path = run.split(":", 1)
        ran = [line.strip() for line in open(path) if line.strip()]
        new = 0
        for symbol in ran:
            p = pattern(symbol)
            if p not in modes:
                modes[p] = set()
                order.append(p)
            if mode not in modes[p]:
                new += 1
                modes[p].add(mode)
        print(f"{path}: {len(ran)} functions, {new} new for {mode}", file=sys.stderr)
    placed = set()
    with open(out_path, "w") as f:
        f.write("/* Generated by agent/link/profile-hot-text.sh: do not edit by hand.\n"
                " * The functions that ran while the agent started, registered,\n"
                " * sent heartbeats and saw a few connections, gathered ahead of\n"
                " * .text so that the kernel maps few pages of code (build.rs). */\n")
        f.write("SECTIONS\n{\n  .text.hot :\n  {\n")
        for title, member in GROUPS:
            f.write(f"    /* {title} */\n")
            for p in order:
                if p in placed or not member(modes[p]):
                    continue
                placed.add(p)
                alts = []
                for prefix in (".text.", ".text.unlikely."):
                    alts.append(prefix + p)
                    if not p.endswith("*"):
                        alts.append(prefix + p + ".llvm.*")
                f.write("    *(" + " ".join(alts) + ")\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"{out_path}: {len(placed)} patterns", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "names":
        names(*sys.argv[2:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "ld":
        write_ld(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
