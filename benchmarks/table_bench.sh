#!/usr/bin/env bash
# table_bench.sh: DTable against DuckDB on the same CSV files, in one job (README.md here).
#
#   bash benchmarks/table_bench.sh [ROWS] [THREADS]
#
# ROWS trips rows (default 10000000), THREADS DuckDB's threads (default 2; dagr runs RANKS
# ranks of DAGR_THREADS=1 thread each, so the two get the same cores when RANKS = THREADS).
# Builds nothing: it expects table_gen (and, for the dagr side, table_bench) in the meson
# build dir $BUILD (default build-dev). Environment:
#   BUILD     the build dir (build-dev)
#   DATA_DIR  where the CSV files go and are kept; they are reused when they were made with
#             the same ROWS, DIMS and SEED (default: a temporary dir, removed at the end)
#   DIMS      dims rows (1000000), SEED table_gen's seed (42)
#   RANKS     dagr's MPI ranks (2), REPEAT runs per operation of each engine, best kept (1)
# JSON lines (table_gen's, DuckDB's, dagr's) go to stdout; progress and the table of
# dagr/duckdb ratios per operation go to stderr.
set -euo pipefail

rows=${1:-10000000}
threads=${2:-2}
build=${BUILD:-build-dev}
dims=${DIMS:-1000000}
seed=${SEED:-42}
ranks=${RANKS:-2}
repeat=${REPEAT:-1}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

gen=$build/benchmarks/table_gen
if [[ ! -x $gen ]]; then
    echo "table_bench.sh: no $gen; build it: meson compile -C $build table_gen" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/table_bench.XXXXXX")
data=${DATA_DIR:-$work/data}
trap 'rm -rf "$work"' EXIT
mkdir -p "$data"

# table_gen's JSON line is kept next to the files: it says how they were made.
stamp=$data/table_gen.json
want="\"seed\":$seed,\"keys\":100000,\"trips_rows\":$rows,"
if [[ -f $data/trips.csv && -f $data/dims.csv && -f $stamp ]] &&
    grep -q "$want" "$stamp" && grep -q "\"dims_rows\":$dims," "$stamp"; then
    echo "table_bench.sh: reusing the data in $data" >&2
    cat "$stamp"
else
    echo "table_bench.sh: writing $rows trips rows and $dims dims rows to $data" >&2
    rm -f "$stamp"
    "$gen" "$data" --rows "$rows" --dims "$dims" --seed "$seed" >"$work/gen.json"
    cp "$work/gen.json" "$stamp"
    cat "$stamp"
fi

if [[ ! -d benchmarks/duckdb/node_modules ]]; then
    echo "table_bench.sh: installing @duckdb/node-api in benchmarks/duckdb" >&2
    (cd benchmarks/duckdb && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }) >&2
fi

echo "table_bench.sh: DuckDB, $threads threads" >&2
node benchmarks/duckdb/run.mjs --trips "$data/trips.csv" --dims "$data/dims.csv" \
    --threads "$threads" --repeat "$repeat" --out "$work" | tee "$work/duckdb.jsonl"

status=0
dagr_bin=$build/benchmarks/table_bench
if [[ -x $dagr_bin ]]; then
    echo "table_bench.sh: dagr, $ranks ranks x DAGR_THREADS=1" >&2
    DAGR_THREADS=1 mpiexec.mpich -n "$ranks" "$dagr_bin" --repeat "$repeat" --trips "$data/trips.csv" \
        --dims "$data/dims.csv" --out "$work" | tee "$work/dagr.jsonl" || status=$?
    [[ $status -eq 0 ]] || echo "table_bench.sh: dagr's table_bench failed ($status)" >&2
else
    echo "table_bench.sh: no $dagr_bin, so DuckDB only" >&2
    : >"$work/dagr.jsonl"
fi

python3 - "$work/duckdb.jsonl" "$work/dagr.jsonl" >&2 <<'EOF'
import json, sys

def load(path):
    """op -> the last JSON object for it; lines that are not JSON objects are skipped."""
    out = {}
    for line in open(path):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if isinstance(o, dict) and o.get("bench") == "table" and "op" in o:
            out[o["op"]] = o
    return out

duck, dagr = load(sys.argv[1]), load(sys.argv[2])
ops = list(duck) + [op for op in dagr if op not in duck]
print(f"{'op':<14}{'duckdb':>11}{'dagr':>11}{'dagr/duckdb':>13}  rows")
for op in ops:
    a, b = duck.get(op, {}), dagr.get(op, {})
    key, unit = ("mb", "MiB") if op == "peak_rss" else ("seconds", "s")
    x, y = a.get(key), b.get(key)
    fmt = "{:.0f}" if op == "peak_rss" else "{:.3f}"
    fx = fmt.format(x) if isinstance(x, (int, float)) else "-"
    fy = fmt.format(y) if isinstance(y, (int, float)) else "-"
    ratio = f"{y / x:.2f}" if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x > 0 else "-"
    if op == "peak_rss":
        rows = unit
    elif "rows" in a and "rows" in b:
        rows = f"{a['rows']} " + ("same" if a["rows"] == b["rows"] else f"!= dagr {b['rows']}")
    else:
        rows = str(a.get("rows", b.get("rows", "")))
    print(f"{op:<14}{fx:>11}{fy:>11}{ratio:>13}  {rows}")
EOF
exit $status
