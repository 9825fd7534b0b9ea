#!/bin/sh
# Static musl builds of honeybee-agent and honeybee-core, and the Windows
# agent (Extension mode only).
#
#   cross/build.sh [TARGET...]      (default: the three Linux targets)
#
# TARGET is x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
# armv7-unknown-linux-musleabihf or x86_64-pc-windows-gnu. Binaries go to
# dist/<target>/ (dist/x86_64-pc-windows-gnu/honeybee-agent.exe); the build
# itself to target/cross/. Installs what it needs first (Debian's
# rustc-web/cargo-web/rust-web-src, `file`, Zig from PyPI for musl, Debian's
# mingw-w64 for Windows); see cross/README.md for why this toolchain.
#
# Environment: HONEYBEE_CROSS_PACKAGES (default "honeybee-agent
# honeybee-core honeybee-alerts"; Windows builds only honeybee-agent),
# CARGO_BUILD_JOBS (passed to cargo as usual).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LINUX="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf"
WINDOWS="x86_64-pc-windows-gnu"
ALL="$LINUX $WINDOWS"
TARGETS=${*:-$LINUX}
PACKAGES=${HONEYBEE_CROSS_PACKAGES:-"honeybee-agent honeybee-core honeybee-alerts"}
TOOLS="$ROOT/target/cross-tools"
# Its own target dir: the Debian rustc must not share build locks or
# build-script outputs with the rustup toolchain's target/release.
export CARGO_TARGET_DIR="$ROOT/target/cross"
started=$(date +%s)

for t in $TARGETS; do
    case " $ALL " in *" $t "*) ;; *) echo "cross: unknown target $t (one of: $ALL)" >&2; exit 2 ;; esac
done

# --- what it needs --------------------------------------------------------
stripper() {
    case "$1" in
        x86_64-*) echo x86_64-linux-gnu-strip ;;
        aarch64-*) echo aarch64-linux-gnu-strip ;;
        armv7-*) echo arm-linux-gnueabihf-strip ;;
        *-windows-gnu) echo x86_64-w64-mingw32-strip ;;
    esac
}
is_windows() { case "$1" in *-windows-*) return 0 ;; *) return 1 ;; esac; }
musl=""
for t in $TARGETS; do is_windows "$t" || musl=1; done
need_install=""
{ [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust ]; } ||
    need_install="rustc-web cargo-web rust-web-src"
command -v file >/dev/null 2>&1 || need_install="$need_install file"
# binutils' strip for each target (see "build" below for why not rustc's).
for t in $TARGETS; do
    s=$(stripper "$t")
    if is_windows "$t"; then
        # mingw-w64: C compiler, linker and the Windows import libraries;
        # its binutils bring strip and objdump.
        command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_install="$need_install gcc-mingw-w64-x86-64"
        continue
    fi
    command -v "$s" >/dev/null 2>&1 || need_install="$need_install $(echo "binutils-${s%-strip}" | tr _ -)"
done
if [ -n "$need_install" ]; then
    echo "cross: installing$need_install from Debian"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_install >/dev/null
fi

# Zig (the C compiler and linker for musl) comes from PyPI's `ziglang`
# wheel: into the Python on PATH when it has pip and allows it, else into a
# venv of our own (Debian's system Python refuses `pip install`).
PY=python3
if [ -n "$musl" ] && ! $PY -m ziglang version >/dev/null 2>&1; then
    if [ -x "$TOOLS/venv/bin/python3" ] && "$TOOLS/venv/bin/python3" -m ziglang version >/dev/null 2>&1; then
        PY="$TOOLS/venv/bin/python3"
    else
        echo "cross: installing ziglang from PyPI"
        if ! python3 -m pip install -q --disable-pip-version-check ziglang 2>/dev/null ||
            ! python3 -m ziglang version >/dev/null 2>&1; then
            mkdir -p "$TOOLS"
            if ! python3 -m venv "$TOOLS/venv" >/dev/null 2>&1; then
                apt-get update -qq
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
                python3 -m venv "$TOOLS/venv"
            fi
            "$TOOLS/venv/bin/python3" -m pip install -q --disable-pip-version-check ziglang
            PY="$TOOLS/venv/bin/python3"
        fi
    fi
fi
PY=$(command -v "$PY")
echo "cross: $(/usr/bin/rustc --version), $(/usr/bin/cargo --version)$([ -z "$musl" ] || echo ", zig $($PY -m ziglang version)")"

# --- compiler wrappers ----------------------------------------------------
# rustc and cc-rs pass the Rust triple as --target=...; zig wants its own.
mkdir -p "$TOOLS"
wrapper() { # name zig-target extra-flags
    cat > "$TOOLS/$1" <<WRAP
#!/bin/sh
for a in "\$@"; do
    shift
    case "\$a" in --target=*) ;; *) set -- "\$@" "\$a" ;; esac
done
exec $PY -m ziglang cc -target $2 $3 "\$@"
WRAP
    chmod +x "$TOOLS/$1"
}
wrapper cc-x86_64-unknown-linux-musl x86_64-linux-musl ""
wrapper cc-aarch64-unknown-linux-musl aarch64-linux-musl ""
wrapper cc-armv7-unknown-linux-musleabihf arm-linux-musleabihf "-mcpu=generic+v7a+vfp3d16+thumb2-neon"
cat > "$TOOLS/ar" <<WRAP
#!/bin/sh
exec $PY -m ziglang ar "\$@"
WRAP
chmod +x "$TOOLS/ar"

# --- build ----------------------------------------------------------------
# Size targets: agent <= 2.5 MB, core <= 8 MB, alerts <= 4 MB (10^6 bytes).
limit() { case "$1" in honeybee-agent) echo 2500000 ;; honeybee-core) echo 8000000 ;; honeybee-alerts) echo 4000000 ;; *) echo 0 ;; esac; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1000000 }'; }

summary=""
over=0
# A Windows binary may import only DLLs every Windows has (System32 and
# the API sets): no MinGW runtime DLL (libgcc_s, libwinpthread) beside it.
windows_dlls_ok() {
    bad=$(x86_64-w64-mingw32-objdump -p "$1" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z' |
        grep -v -x -E 'kernel32\.dll|ntdll\.dll|advapi32\.dll|ws2_32\.dll|iphlpapi\.dll|userenv\.dll|bcryptprimitives\.dll|bcrypt\.dll|msvcrt\.dll|api-ms-win-[a-z0-9-]+\.dll' || true)
    [ -z "$bad" ] || { echo "cross: $1 imports DLLs Windows does not ship: $bad" >&2; return 1; }
}

for t in $TARGETS; do
    t0=$(date +%s)
    T=$(echo "$t" | tr 'a-z-' 'A-Z_')
    u=$(echo "$t" | tr '-' '_')
    packages=$PACKAGES
    exe=""
    if is_windows "$t"; then
        # Extension mode is what runs on Windows; the core and the alerts
        # module are Unix programs.
        packages="honeybee-agent"
        exe=".exe"
        linker=x86_64-w64-mingw32-gcc
        cc=x86_64-w64-mingw32-gcc
        ar=x86_64-w64-mingw32-ar
        # crt-static: the C runtime pieces (libgcc, winpthread) linked in,
        # not loaded from MinGW DLLs a workstation does not have.
        rustflags="-C target-feature=+crt-static"
    else
        linker="$TOOLS/cc-$t"
        cc="$TOOLS/cc-$t"
        ar="$TOOLS/ar"
        rustflags="-C link-self-contained=no -C target-feature=+crt-static"
    fi
    echo "cross: building $packages for $t"
    pkgs=""
    for p in $packages; do pkgs="$pkgs -p $p"; done
    # Linked with its symbols and stripped after: agent/link/profile-hot-text.sh
    # reads the symbols of the very code that ships, and rustc's link-time
    # strip gives the agent other crate hashes, so another layout of the
    # code outside .text.hot than the one profiled.
    # std without its `backtrace` feature: the shipped binaries are stripped,
    # so std's DWARF symbolizer (gimli, addr2line, miniz_oxide: about 140 KB
    # of the agent) could never name a frame anyway; a panic still prints
    # its message and location.
    # shellcheck disable=SC2086
    env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_PROFILE_RELEASE_STRIP=false \
        "CARGO_TARGET_${T}_LINKER=$linker" \
        "CARGO_TARGET_${T}_RUSTFLAGS=$rustflags" \
        "CC_$u=$cc" "AR_$u=$ar" \
        /usr/bin/cargo build --release --locked -Zbuild-std=std,panic_abort \
        -Zbuild-std-features= --target "$t" $pkgs
    mkdir -p "dist/$t"
    for p in $packages; do
        out="dist/$t/$p$exe"
        "$(stripper "$t")" --strip-all -o "$out" "$CARGO_TARGET_DIR/$t/release/$p$exe"
        desc=$(file -b "$out")
        if is_windows "$t"; then
            windows_dlls_ok "$out" || exit 1
        else
            case "$desc" in
                *"statically linked"*|*"static-pie linked"*) ;;
                *) echo "cross: $out is not static: $desc" >&2; exit 1 ;;
            esac
        fi
        size=$(stat -c %s "$out")
        max=$(limit "$p")
        note=""
        if [ "$max" -gt 0 ] && [ "$size" -gt "$max" ]; then
            note="  OVER the $(mb "$max") target"
            over=1
        fi
        echo "cross: $out $size bytes: $desc"
        summary="$summary$(printf '  %-32s %-15s %10s bytes  %s%s' "$t" "$p" "$size" "$(mb "$size")" "$note")
"
    done
    echo "cross: $t took $(( $(date +%s) - t0 )) s"
done

echo "cross: built in $(( $(date +%s) - started )) s:"
printf '%s' "$summary"
[ "$over" = 0 ] || echo "cross: warning: a binary is over its size target (see above)" >&2
