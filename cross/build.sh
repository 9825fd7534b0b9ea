#!/bin/sh
# Static musl builds of honeybee-agent and honeybee-core.
#
#   cross/build.sh [TARGET...]      (default: all three)
#
# TARGET is x86_64-unknown-linux-musl, aarch64-unknown-linux-musl or
# armv7-unknown-linux-musleabihf. Binaries go to dist/<target>/. Installs what
# it needs first (Debian's rustc-web/cargo-web/rust-web-src, `file`, and Zig
# from PyPI); see cross/README.md for why this toolchain.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGETS=${*:-"x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf"}
PACKAGES=${HONEYBEE_CROSS_PACKAGES:-"honeybee-agent honeybee-core"}

need_install=""
[ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust ] || need_install="rustc-web cargo-web rust-web-src"
command -v file >/dev/null 2>&1 || need_install="$need_install file"
if [ -n "$need_install" ]; then
    echo "cross: installing $need_install"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_install >/dev/null
fi
if ! python3 -m ziglang version >/dev/null 2>&1; then
    echo "cross: installing ziglang from PyPI"
    python3 -m pip install -q ziglang
fi

# rustc and cc-rs pass the Rust triple as --target=...; zig wants its own.
TOOLS="$ROOT/target/cross-tools"
mkdir -p "$TOOLS"
wrapper() { # name zig-target extra-flags
    cat > "$TOOLS/$1" <<WRAP
#!/bin/sh
for a in "\$@"; do
    shift
    case "\$a" in --target=*) ;; *) set -- "\$@" "\$a" ;; esac
done
exec python3 -m ziglang cc -target $2 $3 "\$@"
WRAP
    chmod +x "$TOOLS/$1"
}
wrapper cc-x86_64-unknown-linux-musl x86_64-linux-musl ""
wrapper cc-aarch64-unknown-linux-musl aarch64-linux-musl ""
wrapper cc-armv7-unknown-linux-musleabihf arm-linux-musleabihf "-mcpu=generic+v7a+vfp3d16+thumb2-neon"
cat > "$TOOLS/ar" <<'WRAP'
#!/bin/sh
exec python3 -m ziglang ar "$@"
WRAP
chmod +x "$TOOLS/ar"

for t in $TARGETS; do
    T=$(echo "$t" | tr 'a-z-' 'A-Z_')
    u=$(echo "$t" | tr '-' '_')
    echo "cross: building $PACKAGES for $t"
    pkgs=""
    for p in $PACKAGES; do pkgs="$pkgs -p $p"; done
    env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        "CARGO_TARGET_${T}_LINKER=$TOOLS/cc-$t" \
        "CARGO_TARGET_${T}_RUSTFLAGS=-C link-self-contained=no -C target-feature=+crt-static" \
        "CC_$u=$TOOLS/cc-$t" "AR_$u=$TOOLS/ar" \
        /usr/bin/cargo build --release --locked -Zbuild-std=std,panic_abort --target "$t" $pkgs
    mkdir -p "dist/$t"
    for p in $PACKAGES; do
        cp "target/$t/release/$p" "dist/$t/$p"
        desc=$(file -b "dist/$t/$p")
        case "$desc" in
            *"statically linked"*|*"static-pie linked"*) ;;
            *) echo "cross: dist/$t/$p is not static: $desc" >&2; exit 1 ;;
        esac
        echo "cross: dist/$t/$p $(stat -c %s "dist/$t/$p") bytes: $desc"
    done
done
