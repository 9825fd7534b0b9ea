#!/usr/bin/env bash
# Regenerates agent/link/hot-text.ld, the list of functions that build.rs
# links first. The agent runs while it starts, registers with a core on
# loopback, sends heartbeats, retries a busy port and sees a few connections
# (Extension mode), takes Cowrie events (Full mode) and talks TLS 1.3 to the
# core:
#
# 1. under callgrind, which names every function that ran;
# 2. natively under `perf record -e page-faults`, twice, after relinking
#    with the list so far: a fault on code outside .text.hot names a
#    function that ran here but not under valgrind (which runs one thread
#    at a time, so wake-ups take other paths); it joins the list.
#
#     cross/build.sh x86_64-unknown-linux-musl   # the shipped static agent
#     agent/link/profile-hot-text.sh
#
# Two builds are profiled, because their standard libraries name functions
# differently: the glibc release build (as `cargo build --profile
# profiling`, which keeps symbols) and the static musl build of
# cross/build.sh (target/cross keeps it with its symbols; dist/ has it
# stripped). Needs valgrind, perf, python3, curl and openssl; traffic stays
# on 127.0.0.1. A stale list costs memory, never correctness: functions it
# does not name are linked in .text as before, and extension-load shows it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
MUSL=x86_64-unknown-linux-musl
GLIBC_BIN=target/profiling/honeybee-agent
MUSL_BIN=target/cross/$MUSL/release/honeybee-agent

build() {
    cargo build --release -p honeybee-core
    cargo build --profile profiling -p honeybee-agent
    if [ -d "target/cross-tools" ]; then
        HONEYBEE_CROSS_PACKAGES=honeybee-agent cross/build.sh $MUSL
    else
        echo "profile-hot-text: no target/cross-tools (run cross/build.sh once): glibc build only" >&2
    fi
    BINARIES=("$ROOT/$GLIBC_BIN")
    if [ -x "$MUSL_BIN" ]; then
        # Valgrind 3.19 cannot read Zig's DWARF 5: a copy with the symbols only.
        objcopy --strip-debug "$MUSL_BIN" "$MUSL_BIN.symbols"
        BINARIES+=("$ROOT/$MUSL_BIN.symbols")
    fi
}

WORK=$(mktemp -d /tmp/honeybee-hot-text.XXXXXX)
chmod 0755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "${HONEYBEE_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Sets CORE_PORT (not echoed: a $(...) subshell would lose the pid in PIDS).
start_core() { # name, extra flags...
    local name=$1; shift
    local np ap sp
    np=$(free_port); ap=$(free_port); sp=$(free_port)
    target/release/honeybee-core --data-dir "$WORK/core-$name" --node-port "$np" \
        --api-port "$ap" --stream-port "$sp" "$@" >"$WORK/core-$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        (echo >/dev/tcp/127.0.0.1/"$np") 2>/dev/null && break
        sleep 0.05
    done
    CORE_PORT=$np
}

# Starts the agent under $TOOL; prints the agent's own pid. callgrind writes
# its output when the agent exits, after Extension mode has dropped to an
# unprivileged user: the file is made writable for it first.
start_agent() { # out, agent args...
    local out=$1; shift
    if [ "$TOOL" = callgrind ]; then
        install -m 0666 /dev/null "$out"
        valgrind --tool=callgrind --fair-sched=yes --dump-instr=yes \
            --callgrind-out-file="$out" "$@" >"$out.log" 2>&1 &
        echo $!
    else
        perf record -q -e page-faults -c 1 -d -o "$out" -- "$@" >"$out.log" 2>&1 &
        local perf=$! child=""
        for _ in $(seq 100); do
            child=$(pgrep -P "$perf" || true)
            [ -n "$child" ] && break
            sleep 0.05
        done
        echo "$child"
    fi
}

wait_for_log() { # file, text
    for _ in $(seq 600); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "profile-hot-text: '$2' never appeared in $1" >&2
    return 1
}

stop() { # pid, out: waits for the tool to finish writing
    kill -TERM "$1"
    for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    sleep 1
}

touch_ports() { # http, ssh, redis, tls
    curl -s -m 3 -A "Mozilla/5.0 (profile)" "http://127.0.0.1:$1/admin" >/dev/null || true
    (printf 'SSH-2.0-OpenSSH_9.2p1\r\n' >/dev/tcp/127.0.0.1/"$2") 2>/dev/null || true
    (printf '*1\r\n$4\r\nPING\r\n' >/dev/tcp/127.0.0.1/"$3") 2>/dev/null || true
    echo | timeout 5 openssl s_client -connect "127.0.0.1:$4" -servername files.example \
        >/dev/null 2>&1 || true
}

extension_run() { # binary, mode label, core port, tls config
    local bin=$1 label=$2 core=$3 tls=$4
    local out; out="$WORK/$label-$(basename "$bin")-$TOOL-$PASS.out"
    local http ssh redis tlsp
    http=$(free_port); ssh=$(free_port); redis=$(free_port); tlsp=$(free_port)
    local dir; dir=$(mktemp -d "$WORK/agent.XXXXXX"); chmod 0777 "$dir"
    cat >"$dir/agent.toml" <<TOML
mode = "extension"
core = "127.0.0.1:$core"
heartbeat_interval = 1
$tls
[extension]
bind = ["127.0.0.1"]
retry_secs = 1
TOML
    # The core's node port is in use: the agent skips it and retries it.
    local pid
    pid=$(start_agent "$out" "$bin" extension --config "$dir/agent.toml" \
        --state-dir "$dir/state" --name "hot-$label" --ports "$http,$ssh,$redis,$tlsp,$core" \
        --udp-ports "")
    PIDS+=("$pid")
    wait_for_log "$out.log" "registered with"
    sleep 3
    touch_ports "$http" "$ssh" "$redis" "$tlsp"
    sleep 4
    stop "$pid"
    python3 agent/link/hot_text.py names "$bin" "$TOOL" "$out" >"$out.names"
    RUNS+=("$label:$out.names")
}

full_run() { # binary, core port
    local bin=$1 core=$2
    local out; out="$WORK/full-$(basename "$bin")-$TOOL-$PASS.out"
    local events; events=$(free_port)
    local dir; dir=$(mktemp -d "$WORK/agent.XXXXXX")
    cat >"$dir/agent.toml" <<TOML
mode = "full"
core = "127.0.0.1:$core"
heartbeat_interval = 1
[full]
potstore = "$ROOT/potstore"
event_port = $events
TOML
    local pid
    pid=$(start_agent "$out" "$bin" full --config "$dir/agent.toml" \
        --state-dir "$dir/state" --name hot-full)
    PIDS+=("$pid")
    wait_for_log "$out.log" "registered with"
    sleep 2
    (head -n 40 tests/fixtures/cowrie-socketlog.ndjson >/dev/tcp/127.0.0.1/"$events") 2>/dev/null || true
    sleep 4
    stop "$pid"
    python3 agent/link/hot_text.py names "$bin" "$TOOL" "$out" >"$out.names"
    RUNS+=("full:$out.names")
}

scenarios() {
    for bin in "${BINARIES[@]}"; do
        extension_run "$bin" extension "$PLAIN" ""
        full_run "$bin" "$PLAIN"
        extension_run "$bin" tls "$TLS" "$TLS_CONFIG"
    done
}

# webpki wants a CA and a leaf, not one self-signed certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=hot-text-ca -keyout "$WORK/ca.key" -out "$WORK/ca.pem" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$WORK/core.key" -out "$WORK/core.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$WORK/leaf.ext"
openssl x509 -req -in "$WORK/core.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/leaf.ext" -out "$WORK/core.pem" >/dev/null 2>&1
chmod 0644 "$WORK/ca.pem"
TLS_CONFIG=$(printf '[tls]\nenabled = true\nca = "%s"\nserver_name = "localhost"' "$WORK/ca.pem")

RUNS=()
build
start_core plain
PLAIN=$CORE_PORT
start_core tls --tls-cert "$WORK/core.pem" --tls-key "$WORK/core.key"
TLS=$CORE_PORT
TOOL=callgrind PASS=0 scenarios
python3 agent/link/hot_text.py ld agent/link/hot-text.ld "${RUNS[@]}"
for PASS in 1 2; do
    build
    TOOL=perf scenarios
    python3 agent/link/hot_text.py ld agent/link/hot-text.ld "${RUNS[@]}"
done
