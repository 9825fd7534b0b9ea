#!/usr/bin/env bash
# CI smoke run of the fuzz targets: installs cargo-fuzz when missing, builds
# every target once (AddressSanitizer, libFuzzer), then runs each for
# FUZZ_SECONDS (default 30) on a temporary copy of its committed corpus, so
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
failed=()
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target" "artifacts/$target"
    if [ -d "corpus/$target" ]; then
        cp -R "corpus/$target/." "$work/$target/"
    fi
    log="$work/$target.log"
    # TMPDIR: module_session keeps a throwaway SQLite store under it.
    if TMPDIR="$work" cargo fuzz run "$target" "$work/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
        # The last status line: executions, coverage, features, speed.
        summary=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
        echo "ok   $target: $summary"
    else
        echo "FAIL $target (log below)"
        tail -n 60 "$log"
        failed+=("$target")
    fi
done

echo "fuzz smoke: $(($(date +%s) - started)) s (build $((built - started)) s, ${secs} s per target)"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets failed: ${failed[*]}"
    exit 1
fi
