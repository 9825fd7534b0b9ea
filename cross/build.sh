#!/bin/sh
# Static musl builds of honeybee-agent and honeybee-core.
#
#   cross/build.sh [TARGET...]      (default: all three)
#
# TARGET is x86_64-unknown-linux-musl, aarch64-unknown-linux-musl or
# armv7-unknown-linux-musleabihf. Binaries go to dist/<target>/; the build
# itself to target/cross/. Installs what it needs first (Debian's
# rustc-web/cargo-web/rust-web-src, `file`, and Zig from PyPI); see
# cross/README.md for why this toolchain.
#
# Environment: HONEYBEE_CROSS_PACKAGES (default "honeybee-agent
# honeybee-core honeybee-alerts"), CARGO_BUILD_JOBS (passed to cargo as usual).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ALL="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf"
TARGETS=${*:-$ALL}
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
    esac
}
need_install=""
{ [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust ]; } ||
    need_install="rustc-web cargo-web rust-web-src"
command -v file >/dev/null 2>&1 || need_install="$need_install file"
# binutils' strip for each target (see "build" below for why not rustc's).
for t in $TARGETS; do
    s=$(stripper "$t")
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
if ! $PY -m ziglang version >/dev/null 2>&1; then
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
echo "cross: $(/usr/bin/rustc --version), $(/usr/bin/cargo --version), zig $($PY -m ziglang version)"

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
for t in $TARGETS; do
    t0=$(date +%s)
    T=$(echo "$t" | tr 'a-z-' 'A-Z_')
    u=$(echo "$t" | tr '-' '_')
    echo "cross: building $PACKAGES for $t"
    pkgs=""
    for p in $PACKAGES; do pkgs="$pkgs -p $p"; done
    # Linked with its symbols and stripped after: agent/link/profile-hot-text.sh
    # reads the symbols of the very code that ships, and rustc's link-time
    # strip gives the agent other crate hashes, so another layout of the
    # code outside .text.hot than the one profiled.
    # shellcheck disable=SC2086
    env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_PROFILE_RELEASE_STRIP=false \
        "CARGO_TARGET_${T}_LINKER=$TOOLS/cc-$t" \
        "CARGO_TARGET_${T}_RUSTFLAGS=-C link-self-contained=no -C target-feature=+crt-static" \
        "CC_$u=$TOOLS/cc-$t" "AR_$u=$TOOLS/ar" \
        /usr/bin/cargo build --release --locked -Zbuild-std=std,panic_abort --target "$t" $pkgs
    mkdir -p "dist/$t"
    for p in $PACKAGES; do
        "$(stripper "$t")" --strip-all -o "dist/$t/$p" "$CARGO_TARGET_DIR/$t/release/$p"
        desc=$(file -b "dist/$t/$p")
        case "$desc" in
            *"statically linked"*|*"static-pie linked"*) ;;
            *) echo "cross: dist/$t/$p is not static: $desc" >&2; exit 1 ;;
        esac
        size=$(stat -c %s "dist/$t/$p")
        max=$(limit "$p")
        note=""
        if [ "$max" -gt 0 ] && [ "$size" -gt "$max" ]; then
            note="  OVER the $(mb "$max") target"
            over=1
        fi
        echo "cross: dist/$t/$p $size bytes: $desc"
        summary="$summary$(printf '  %-32s %-15s %10s bytes  %s%s' "$t" "$p" "$size" "$(mb "$size")" "$note")
"
    done
    echo "cross: $t took $(( $(date +%s) - t0 )) s"
done

echo "cross: built in $(( $(date +%s) - started )) s:"
printf '%s' "$summary"
[ "$over" = 0 ] || echo "cross: warning: a binary is over its size target (see above)" >&2
