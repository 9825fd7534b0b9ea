#!/usr/bin/env bash
# CI smoke run of the fuzz targets: installs cargo-fuzz when missing, builds
# every target once (AddressSanitizer, libFuzzer), then runs each for
# FUZZ_SECONDS (default 30), FUZZ_JOBS at a time (default: one a core), on a
# temporary copy of its committed corpus, so
# that what the run finds never grows the repository. Any crash, leak,
# timeout (10 s for one input) or out-of-memory fails the script; the
# failing input is kept under fuzz/artifacts/TARGET/ and named in the log.
set -euo pipefail
cd "$(dirname "$0")"

secs="${FUZZ_SECONDS:-30}"
started=$(date +%s)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes -Z flags (sanitizers, coverage) to rustc: the stable
# toolchain takes them with RUSTC_BOOTSTRAP, so no nightly is needed.
export RUSTC_BOOTSTRAP=1

echo "== building fuzz targets"
cargo fuzz build
built=$(date +%s)
echo "fuzz build: $((built - started)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The targets run side by side, one a core (FUZZ_JOBS, default: every core):
# each still gets its full FUZZ_SECONDS of one CPU.
jobs="${FUZZ_JOBS:-$(nproc)}"
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

run_one() {
    local target=$1
    mkdir -p "$work/$target" "$work/tmp-$target" "artifacts/$target"
    if [ -d "corpus/$target" ]; then
        cp -R "corpus/$target/." "$work/$target/"
    fi
    local log="$work/$target.log"
    # TMPDIR: module_session keeps a throwaway SQLite store under it.
    if TMPDIR="$work/tmp-$target" "$bin/$target" "$work/$target" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
        # The last status line: executions, coverage, features, speed.
        echo "ok   $target: $(grep -E '^#[0-9]+' "$log" | tail -n 1)"
    else
        echo "FAIL $target (log below)"
        tail -n 60 "$log"
        touch "$work/$target.failed"
    fi
}

targets=$(cargo fuzz list)
for target in $targets; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    run_one "$target" &
done
wait

failed=()
for target in $targets; do
    if [ -e "$work/$target.failed" ]; then
        failed+=("$target")
    fi
done

echo "fuzz smoke: $(($(date +%s) - started)) s (build $((built - started)) s, ${secs} s per target, $jobs at a time)"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets failed: ${failed[*]}"
    exit 1
fi
