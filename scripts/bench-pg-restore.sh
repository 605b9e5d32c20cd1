#!/bin/sh
# Benchmark (not a test): `pg-dumpwrap restore` (which reads the whole dump once
# to refuse anything pg_dump never writes, then streams it into psql in one
# transaction) against the pipeline it replaces, `gunzip -c | psql
# --single-transaction`, alternating in one run on the same dump of a pgbench
# database (scale $SCALE), each into a fresh database. Reports wall and CPU time.
#
#   scripts/bench-pg-restore.sh            # SCALE=10 ROUNDS=3
set -eu
cd "$(dirname "$0")/.."
SCALE=${SCALE:-10}
ROUNDS=${ROUNDS:-3}
work=${BENCH_DIR:-/tmp/backup-kit-bench-pg-restore}

cargo build --release --locked --quiet -p pg-dumpwrap
tool="$(pwd)/target/release/pg-dumpwrap"
. scripts/bench-pg-cluster.sh
pgbench -i -q -s "$SCALE" >/dev/null 2>&1
POSTGRES_DB=bench "$tool" backup --backup-dir "$work/out" >/dev/null 2>&1
dump=$work/out/postgres/bench_latest.sql.gz
echo "dump: $(stat -L -c %s "$dump") bytes gzip, $(gunzip -c "$dump" | wc -c) bytes of SQL"

measure() { # name command...
    name=$1; shift
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" >/dev/null 2>&1
    read -r wall user sys < "$work/time"
    echo "$name $wall $user $sys"
}
results="$work/results"; : > "$results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    createdb "pipe$i"
    measure pipeline sh -c "gunzip -c '$dump' | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d pipe$i" >> "$results"
    measure pg-dumpwrap env POSTGRES_DB="tool$i" "$tool" restore --create "$dump" >> "$results"
    tail -n 2 "$results" >&2
    i=$((i + 1))
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, user, sys_ = line.split()
    runs.setdefault(name, []).append((float(wall), float(user) + float(sys_)))
for k, v in runs.items():
    print(f"{k:12} wall {statistics.median(w for w, _ in v):6.2f} s  cpu {statistics.median(c for _, c in v):6.2f} s")
p, t = (statistics.median(w for w, _ in runs[k]) for k in ("pipeline", "pg-dumpwrap"))
print(f"wall ratio pg-dumpwrap/pipeline: {t / p:.2f}")
PY
