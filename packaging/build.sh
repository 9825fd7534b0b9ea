#!/bin/sh
# .deb and .rpm packages of honeybee-core and honeybee-agent from the static
# binaries cross/build.sh leaves in dist/<target>/.
#
#   packaging/build.sh [TARGET...]      (default: all three)
#
# TARGET -> deb / rpm architecture:
#   x86_64-unknown-linux-musl        amd64  x86_64
#   aarch64-unknown-linux-musl       arm64  aarch64
#   armv7-unknown-linux-musleabihf   armhf  armv7hl
#
# Output: dist/packages/honeybee-{core,agent}_<version>_<arch>.deb and
# dist/packages/honeybee-{core,agent}-<version>-1.<arch>.rpm. Needs dpkg-deb
# and rpmbuild (Debian: dpkg, rpm); no network. See packaging/README.md.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PKG="$ROOT/packaging"
# HONEYBEE_DIST_DIR: another folder laid out like dist/ (packages go to its packages/).
DIST=${HONEYBEE_DIST_DIR:-$ROOT/dist}
OUT="$DIST/packages"
TARGETS=${*:-"x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf"}

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
HOMEPAGE=$(sed -n '/^\[workspace.package\]/,/^\[/s/^repository *= *"\(.*\)"/\1/p' Cargo.toml)
MAINTAINER=${HONEYBEE_MAINTAINER:-"HoneyBee maintainers <maintainers@honeybee.invalid>"}
if [ -z "$VERSION" ] || [ -z "$HOMEPAGE" ]; then
    echo "packaging: no version/repository in Cargo.toml" >&2
    exit 1
fi
# Reproducible: every timestamp is the last commit's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

for tool in dpkg-deb rpmbuild gzip; do
    command -v "$tool" >/dev/null || { echo "packaging: $tool is missing (Debian: apt-get install dpkg rpm gzip)" >&2; exit 1; }
done

umask 022
WORK="$ROOT/target/packaging"
rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"

# deb arch, rpm arch and ELF e_machine (hex) of a target.
arches() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "amd64 x86_64 3e" ;;
        aarch64-unknown-linux-musl) echo "arm64 aarch64 b7" ;;
        armv7-unknown-linux-musleabihf) echo "armhf armv7hl 28" ;;
        *) echo "packaging: unknown target $1" >&2; exit 1 ;;
    esac
}

# The ELF machine of $1 must be $2: a binary of the wrong target never gets
# into a package.
check_elf() {
    magic=$(od -An -tx1 -N4 "$1" | tr -d ' \n')
    machine=$(od -An -tx1 -j18 -N1 "$1" | tr -d ' \n')
    if [ "$magic" != 7f454c46 ] || [ "$machine" != "$2" ]; then
        echo "packaging: $1 is not an ELF binary for machine 0x$2 (magic $magic, machine 0x$machine)" >&2
        exit 1
    fi
}

# A man page from the binary's own --help (the first line is NAME; lines
# like "OPTIONS:" start sections; the rest is kept as written).
manpage() { # binary name out
    help=$("$1" --help) || return 1
    title=$(printf '%s\n' "$help" | head -n1 | sed 's/^[^ ]* — //')
    {
        printf '.TH %s 1 "%s" "%s %s" "HoneyBee"\n' "$(echo "$2" | tr '[:lower:]' '[:upper:]')" \
            "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" "$2" "$VERSION"
        printf '.SH NAME\n%s \\- %s\n' "$2" "$(printf '%s' "$title" | sed 's/\\/\\e/g; s/-/\\-/g')"
        printf '%s\n' "$help" | tail -n +2 | sed 's/—/\\(em/g; s/…/.../g' | awk '
            /^$/ { next }
            /^[A-Z][A-Z ]*( \(.*\))?:$/ {
                if (open) print ".fi"
                sub(/:$/, ""); gsub(/"/, "")
                note = ""
                if (match($0, / \(.*\)$/)) { note = substr($0, RSTART + 2, RLENGTH - 3); $0 = substr($0, 1, RSTART - 1) }
                print ".SH \"" $0 "\""; print ".nf"; open = 1
                if (note == "") next
                $0 = "    (" note ")"
            }
            {
                gsub(/\\/, "\\e"); gsub(/-/, "\\-")
                if ($0 ~ /^[.\047]/) $0 = "\\&" $0
                print
            }
            END { if (open) print ".fi" }'
        printf '.SH "SEE ALSO"\n%s\n' "$HOMEPAGE"
    } | gzip -9n > "$3"
}

# Runs on this machine: the target's own binary, else the x86_64 one.
runnable() { # name target
    for t in "$2" x86_64-unknown-linux-musl; do
        if "$DIST/$t/$1" --version >/dev/null 2>&1; then
            echo "$DIST/$t/$1"
            return
        fi
    done
    echo "packaging: no dist/*/$1 runs here to write its man page from --help" >&2
    exit 1
}

# The repo's configs with the packaged paths: one folder per service under
# /var/lib/honeybee (an agent's identity must not be shared by its two
# modes, nor its folder with the core's database).
config() { # name out
    case "$1" in
        core.toml) from='^data_dir = "./honeybee-data"$'; to='data_dir = "/var/lib/honeybee/core"' ;;
        agent-full.toml) from='^# state_dir = "/var/lib/honeybee"$'; to='state_dir = "/var/lib/honeybee/agent"' ;;
        agent-extension.toml) from='^# state_dir = "/var/lib/honeybee"$'; to='state_dir = "/var/lib/honeybee/extension"' ;;
        alerts.toml) from='^# state_dir = "/var/lib/honeybee/alerts"$'; to='state_dir = "/var/lib/honeybee/core/alerts"' ;;
    esac
    grep -q "$from" "configs/$1" || { echo "packaging: configs/$1 has no line matching $from" >&2; exit 1; }
    {
        echo "# Installed by the HoneyBee package: your changes are kept on upgrades."
        sed "s|$from|$to|" "configs/$1"
    } > "$2"
    grep -qx "$to" "$2"
}

# Lays out package $1 for target $2 under $3 (a filesystem root).
stage() { # package target root
    r=$3
    set -- "$1" "$2" "$3" "$(echo "$1" | sed 's/^honeybee-//')"
    install -d "$r/usr/bin" "$r/etc/honeybee" "$r/usr/lib/systemd/system" \
        "$r/usr/share/man/man1" "$r/usr/share/doc/$1"
    install -m 0755 "$DIST/$2/$1" "$r/usr/bin/$1"
    manpage "$(runnable "$1" "$2")" "$1" "$r/usr/share/man/man1/$1.1.gz"
    install -m 0644 "$PKG/debian/copyright" "$r/usr/share/doc/$1/copyright"
    sed -e "s/@VERSION@/$VERSION/" -e "s/@MAINTAINER@/$MAINTAINER/" \
        -e "s/@DATE@/$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")/" \
        "$PKG/debian/changelog.in" | gzip -9n > "$r/usr/share/doc/$1/changelog.gz"
    case "$4" in
        core)
            config core.toml "$r/etc/honeybee/core.toml"
            install -m 0644 "$PKG/systemd/honeybee-core.service" "$r/usr/lib/systemd/system/"
            # The alerts module ships with the core, which runs it
            # ([[modules]] in core.toml, commented out until configured).
            install -m 0755 "$DIST/$2/honeybee-alerts" "$r/usr/bin/honeybee-alerts"
            manpage "$(runnable honeybee-alerts "$2")" honeybee-alerts "$r/usr/share/man/man1/honeybee-alerts.1.gz"
            config alerts.toml "$r/etc/honeybee/alerts.toml.in"
            sed 's|^path = "./alerts.ecs.json"$|path = "/var/lib/honeybee/core/alerts/alerts.ecs.json"|' \
                "$r/etc/honeybee/alerts.toml.in" > "$r/etc/honeybee/alerts.toml"
            rm "$r/etc/honeybee/alerts.toml.in"
            grep -qx 'path = "/var/lib/honeybee/core/alerts/alerts.ecs.json"' "$r/etc/honeybee/alerts.toml"
            ;;
        agent)
            config agent-full.toml "$r/etc/honeybee/agent-full.toml"
            config agent-extension.toml "$r/etc/honeybee/agent-extension.toml"
            install -m 0644 "$PKG/systemd/honeybee-agent.service" "$PKG/systemd/honeybee-extension.service" \
                "$r/usr/lib/systemd/system/"
            # The pot catalogue; install/start scripts keep their x bit.
            install -d "$r/usr/share/honeybee"
            cp -R potstore "$r/usr/share/honeybee/potstore"
            find "$r/usr/share/honeybee/potstore" \( -name '__pycache__' -o -name '.*' \) -prune -exec rm -rf {} +
            find "$r/usr/share/honeybee/potstore" -type d -exec chmod 0755 {} +
            find "$r/usr/share/honeybee/potstore" -type f -perm /111 -exec chmod 0755 {} +
            find "$r/usr/share/honeybee/potstore" -type f ! -perm /111 -exec chmod 0644 {} +
            ;;
    esac
    # Lintian: statically linked on purpose (one file to copy to a router).
    install -d "$r/usr/share/lintian/overrides"
    printf '%s: statically-linked-binary [usr/bin/%s]\n' "$1" "$1" > "$r/usr/share/lintian/overrides/$1"
    [ "$1" = honeybee-core ] &&
        printf '%s: statically-linked-binary [usr/bin/honeybee-alerts]\n' "$1" >> "$r/usr/share/lintian/overrides/$1"
    find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# Per-package facts: units, configs, state folders, summary, description.
facts() {
    case "$1" in
        honeybee-core)
            UNITS="honeybee-core.service"
            CONFIGS="/etc/honeybee/core.toml /etc/honeybee/alerts.toml"
            STATE="/var/lib/honeybee/core"
            RECOMMENDS=""
            SUMMARY="HoneyBee honeypot framework - core server"
            DESC="HoneyBee is a honeypot orchestration framework. The core is the server
its nodes report to: it enrols them (TOTP, optional TLS 1.3 and client
certificates), stores their events in SQLite and serves a REST API, a web
dashboard and a live event stream. With it comes honeybee-alerts, the
module that sends alerts to webhooks, Slack, Teams, syslog, email and
ECS files.

Statically linked binaries. The honeybee-core service is installed
disabled: edit /etc/honeybee/core.toml, then enable it."
            ;;
        honeybee-agent)
            UNITS="honeybee-agent.service honeybee-extension.service"
            CONFIGS="/etc/honeybee/agent-full.toml /etc/honeybee/agent-extension.toml"
            STATE="/var/lib/honeybee/agent /var/lib/honeybee/extension"
            # Pots may be installed from a git URL.
            RECOMMENDS="Recommends: git"
            SUMMARY="HoneyBee honeypot framework - edge agent"
            DESC="HoneyBee is a honeypot orchestration framework. The agent runs on ARM
routers, Raspberry Pis and workstations. In Full mode it supervises
honeypots from the bundled potstore (or from git) and forwards their
events to the core; in Extension mode it quietly listens on the ports
nobody on the machine uses and reports who probes them.

One statically linked binary. The honeybee-agent (Full) and
honeybee-extension services are installed disabled."
            ;;
    esac
}

deb() { # package target debarch
    facts "$1"
    r="$WORK/deb-$1-$3"
    stage "$1" "$2" "$r"
    install -d "$r/DEBIAN"
    for f in $CONFIGS; do echo "$f"; done > "$r/DEBIAN/conffiles"
    for s in postinst prerm postrm; do
        sed -e "s|@PACKAGE@|$1|" -e "s|@UNITS@|$UNITS|" -e "s|@CONFIGS@|$CONFIGS|" \
            -e "s|@STATE@|$STATE|" "$PKG/debian/$s.in" > "$r/DEBIAN/$s"
        chmod 0755 "$r/DEBIAN/$s"
    done
    (cd "$r" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
        xargs md5sum) > "$r/DEBIAN/md5sums"
    size=$(du -sk --exclude=DEBIAN "$r" | cut -f1)
    {
        echo "Package: $1"
        echo "Source: honeybee"
        echo "Version: $VERSION"
        echo "Architecture: $3"
        echo "Maintainer: $MAINTAINER"
        echo "Installed-Size: $size"
        # adduser: the postinst creates the honeybee user with it.
        echo "Depends: adduser"
        [ -n "$RECOMMENDS" ] && echo "$RECOMMENDS"
        echo "Section: net"
        echo "Priority: optional"
        echo "Homepage: $HOMEPAGE"
        echo "Description: $SUMMARY"
        printf '%s\n' "$DESC" | sed 's/^$/./; s/^/ /'
    } > "$r/DEBIAN/control"
    find "$r/DEBIAN" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$r" "$OUT/${1}_${VERSION}_$3.deb" >/dev/null
}

rpm() { # package target rpmarch
    facts "$1"
    r="$WORK/rpm-$1-$3"
    stage "$1" "$2" "$r"
    # rpm keeps the licence under /usr/share/licenses, not the deb's doc files.
    rm -rf "$r/usr/share/doc" "$r/usr/share/lintian"
    install -d "$r/usr/share/licenses/$1"
    install -m 0644 "$PKG/debian/copyright" "$r/usr/share/licenses/$1/copyright"
    # The copyright file points at Debian's copy of the licence; rpm systems get the text.
    install -m 0644 "$ROOT/LICENSE" "$r/usr/share/licenses/$1/LICENSE"
    install -d -m 0711 "$r/var/lib/honeybee"
    for dir in $STATE; do install -d -m 0700 "$r$dir"; done
    find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    spec="$WORK/$1-$3.spec"
    {
        sed -e "s|@PACKAGE@|$1|g" -e "s|@VERSION@|$VERSION|" -e "s|@SUMMARY@|$SUMMARY|" \
            -e "s|@HOMEPAGE@|$HOMEPAGE|" -e "s|@UNITS@|$UNITS|" -e "s|@RECOMMENDS@|$RECOMMENDS|" \
            "$PKG/rpm/honeybee.spec.in"
        printf '\n%%description\n%s\n' "$DESC"
        echo
        echo "%files"
        echo "%attr(0755,root,root) /usr/bin/$1"
        echo "%dir /etc/honeybee"
        for f in $CONFIGS; do echo "%config(noreplace) %attr(0640,root,honeybee) $f"; done
        for u in $UNITS; do echo "/usr/lib/systemd/system/$u"; done
        echo "/usr/share/man/man1/$1.1.gz"
        echo "%license /usr/share/licenses/$1/copyright"
        echo "%license /usr/share/licenses/$1/LICENSE"
        # Traversable for the pots on their way to agent/pots/<id>; each
        # service's folder its own (the Full agent runs as root).
        echo "%dir %attr(0711,root,root) /var/lib/honeybee"
        for dir in $STATE; do
            case "$dir" in
                */agent) echo "%dir %attr(0700,root,root) $dir" ;;
                *) echo "%dir %attr(0700,honeybee,honeybee) $dir" ;;
            esac
        done
        [ "$1" = honeybee-agent ] && echo "/usr/share/honeybee"
        if [ "$1" = honeybee-core ]; then
            echo "%attr(0755,root,root) /usr/bin/honeybee-alerts"
            echo "/usr/share/man/man1/honeybee-alerts.1.gz"
        fi
        echo
        echo "%changelog"
        echo "* $(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y') $MAINTAINER - $VERSION-1"
        echo "- Packages built from the HoneyBee source tree by packaging/build.sh."
    } > "$spec"
    HOME="$WORK" rpmbuild -bb --quiet --target "$3-linux" \
        --define "_topdir $WORK/rpmbuild-$1-$3" \
        --define "_rpmdir $OUT" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "hb_stage $r" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        --define "_buildhost honeybee-packaging" \
        "$spec" >/dev/null
}

for t in $TARGETS; do
    a=$(arches "$t")
    # shellcheck disable=SC2086
    set -- $a
    debarch=$1 rpmarch=$2 machine=$3
    for p in honeybee-core honeybee-agent; do
        [ -f "$DIST/$t/$p" ] || { echo "packaging: $DIST/$t/$p is missing: run cross/build.sh $t first" >&2; exit 1; }
        check_elf "$DIST/$t/$p" "$machine"
        deb "$p" "$t" "$debarch"
        rpm "$p" "$t" "$rpmarch"
        for f in "$OUT/${p}_${VERSION}_$debarch.deb" "$OUT/$p-$VERSION-1.$rpmarch.rpm"; do
            echo "packaging: ${f#"$ROOT"/} $(stat -c %s "$f") bytes"
        done
    done
done
