#!/usr/bin/env bash
# bench/duckdb_from_wheel.sh - an optimized sluice for the DuckDB benchmarks without compiling DuckDB.
#
# Usage:  bench/duckdb_from_wheel.sh            prints the path of the built binary on stdout
#
# A release build of the bundled DuckDB costs ~100 CPU-minutes on this machine. For timing
# `run` on DuckDB against dbt-duckdb, this builds sluice (profile bench-parse, i.e. release)
# against the DuckDB engine inside the dbt venv's Python wheel instead: the same DuckDB
# release (2.0.0, matching libduckdb-sys 1.20000) and the very build dbt-duckdb runs on, so
# both tools get an identical, optimized engine. The wheel's extension module exports
# DuckDB's C API; it is linked as libduckdb.so (symlink) plus libpython for the module's
# own unresolved Python symbols (never called). Benchmark-only: the tool's normal build
# bundles DuckDB.
#
# Steps: a copy of HEAD in $WORK (default /tmp/sysduck) with the duckdb dependency's
# features removed, built with DUCKDB_LIB_DIR and rpaths into $CARGO_TARGET_DIR
# (default ~/.cache/sluice-sysduck). First build ~10 minutes (no C++), then incremental.
# The numbers in the session-2 note ran this binary through a wrapper that sets
# LD_PRELOAD=$PYLIB/libpython3.X.so.1.0; `--no-as-needed` below is meant to make that unnecessary
# (added afterwards, not yet re-verified: if the binary reports an undefined Py* symbol, use the preload).
# Environment: DBT_VENV (default /work/venv-dbt), PYLIB (dir of libpython3.X.so for that venv).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DBT_VENV=${DBT_VENV:-/work/venv-dbt}
WORK=${WORK:-/tmp/sysduck}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_SYSDUCK:-$HOME/.cache/sluice-sysduck}

wheel=$(ls "$DBT_VENV"/lib/python3*/site-packages/_duckdb*.so 2>/dev/null | head -1)
[[ -n "$wheel" ]] || { echo "duckdb_from_wheel.sh: no _duckdb*.so under $DBT_VENV (pip install duckdb there)" >&2; exit 1; }
py=$("$DBT_VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
PYLIB=${PYLIB:-$("$DBT_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')}
[[ -e "$PYLIB/libpython$py.so" ]] || { echo "duckdb_from_wheel.sh: libpython$py.so not in $PYLIB (set PYLIB)" >&2; exit 1; }

lib="$WORK-lib"
mkdir -p "$lib"
ln -sf "$wheel" "$lib/libduckdb.so"
rm -rf "$WORK" && mkdir -p "$WORK"
git -C "$REPO" archive HEAD | tar -x -C "$WORK"
# libduckdb-sys's `json` and `parquet` features imply `bundled` (a C++ build); the wheel's
# engine has both extensions built in, so the crate needs none of its features.
sed -i 's/features = \["bundled", "json", "parquet"\]/features = []/' "$WORK/Cargo.toml"
grep -q '^duckdb = .*features = \[\]' "$WORK/Cargo.toml" || { echo "duckdb_from_wheel.sh: duckdb dependency line not found in Cargo.toml" >&2; exit 1; }

export DUCKDB_LIB_DIR="$lib"
export RUSTFLAGS="-C link-arg=-Wl,-rpath,$lib -C link-arg=-L$PYLIB -C link-arg=-Wl,--no-as-needed -C link-arg=-lpython$py -C link-arg=-Wl,-rpath,$PYLIB"
(cd "$WORK" && cargo build --profile bench-parse >&2)
echo "$CARGO_TARGET_DIR/bench-parse/sluice"
