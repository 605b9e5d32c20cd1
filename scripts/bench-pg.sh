#!/bin/sh
# Benchmark (not a test): pg-dumpwrap backup against the shell pipeline it
# replaces, `pg_dump <seed options> | gzip > file`, alternating in one run on the
# same throwaway database (pgbench -i -s $SCALE, ~1 GB at the default 60).
# Reports wall time, CPU time (user+sys of every process), peak RSS (the largest
# single process) and output size per run, then the medians and ratios. Each
# round also runs pg-dumpwrap with encryption on (age, to a throwaway key), so
# its overhead is measured against encryption off in the same run.
#
#   scripts/bench-pg.sh            # SCALE=60 ROUNDS=3
#   SCALE=10 ROUNDS=2 scripts/bench-pg.sh
set -eu
cd "$(dirname "$0")/.."
SCALE=${SCALE:-60}
ROUNDS=${ROUNDS:-3}
work=${BENCH_DIR:-/tmp/backup-kit-bench-pg}

cargo build --release --locked --quiet
tool="$(pwd)/target/release/pg-dumpwrap"
. scripts/bench-pg-cluster.sh
echo "building the database: pgbench -i -s $SCALE" >&2
pgbench -i -q -s "$SCALE" >/dev/null 2>&1
psql -XAtc "SELECT 'database size: ' || pg_size_pretty(pg_database_size('bench'))"
rm -f "$work/age.key"
recipient=$(age-keygen -o "$work/age.key" 2>&1 | sed -n 's/^Public key: //p')

measure() { # name command...
    name=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >/dev/null
    read -r wall user sys rss_kb < "$work/time"
    echo "$name $wall $user $sys $rss_kb"
}

results="$work/results"; : > "$results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    rm -rf "$work/out"/*
    measure pipeline sh -c "pg_dump --no-owner --no-acl --clean --if-exists | gzip > '$work/out/pipeline.sql.gz'" >> "$results"
    echo "size pipeline $(stat -c %s "$work/out/pipeline.sql.gz")" >> "$results"
    measure pg-dumpwrap "$tool" backup --backup-dir "$work/out/tree" >> "$results"
    echo "size pg-dumpwrap $(stat -L -c %s "$work"/out/tree/postgres/bench_latest.sql.gz)" >> "$results"
    measure pg-dumpwrap+age env BACKUP_AGE_RECIPIENTS="$recipient" "$tool" backup --backup-dir "$work/out/sealed" >> "$results"
    echo "size pg-dumpwrap+age $(stat -L -c %s "$work"/out/sealed/postgres/bench_latest.sql.gz.age)" >> "$results"
    tail -n 6 "$results" >&2
    i=$((i + 1))
done

python3 - "$results" <<'PY'
import statistics, sys
runs = {"pipeline": [], "pg-dumpwrap": [], "pg-dumpwrap+age": []}
sizes = {"pipeline": [], "pg-dumpwrap": [], "pg-dumpwrap+age": []}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "size":
        sizes[f[1]].append(int(f[2]))
    else:
        wall, user, sys_, rss = map(float, f[1:])
        runs[f[0]].append((wall, user + sys_, rss / 1024))
med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in runs.items()}
print(f"{'':16} {'wall s':>8} {'cpu s':>8} {'peak RSS MiB':>13} {'size bytes':>12}")
for k in runs:
    w, c, r = med[k]
    print(f"{k:16} {w:8.2f} {c:8.2f} {r:13.1f} {int(statistics.median(sizes[k])):12d}")
p, t = med["pipeline"], med["pg-dumpwrap"]
size_ratio = statistics.median(sizes["pg-dumpwrap"]) / statistics.median(sizes["pipeline"])
print(f"wall ratio pg-dumpwrap/pipeline: {t[0] / p[0]:.2f} (target <= 0.70)")
print(f"size ratio pg-dumpwrap/gzip -6:  {size_ratio:.3f} (target <= 1.03)")
print(f"peak RSS pg-dumpwrap run:        {t[2]:.1f} MiB (largest process, pg_dump included; target <= 32)")
a = med["pg-dumpwrap+age"]
print(f"encryption on/off, wall:          {a[0] / t[0]:.3f} (target <= 1.05)")
print(f"encryption on - off, peak RSS:    {a[2] - t[2]:+.1f} MiB (target <= 4)")
PY
