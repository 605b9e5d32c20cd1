#!/bin/sh
# Benchmark (not a test): backup-prune planning and deleting over N artifacts
# (default 100,000, spread over the four component folders, one per hour back in
# time, each with its sidecar). Target: under 1 second, and memory bounded by the
# largest component folder (the run is also repeated with N/10 to show it).
# Reported: a --dry-run (scan + plan only), the real run, and as the floor the
# same files deleted by `xargs rm` (what the kernel's unlink alone costs).
set -eu
cd "$(dirname "$0")/.."
N=${N:-100000}
work=${BENCH_DIR:-/tmp/backup-kit-bench-prune}
cargo build --release --locked --quiet -p backup-prune
bin="$(pwd)/target/release/backup-prune"

# Every tree gets the same names, so the baseline deletes exactly what prune did.
base=$(date +%s)
make_tree() { # count
    rm -rf "$work"; mkdir -p "$work"
    python3 - "$work" "$1" "$base" <<'PY'
import datetime, os, sys
root, n = sys.argv[1], int(sys.argv[2])
kinds = [("postgres", "db", "sql.gz"), ("minio", "documents", "tar.gz"), ("qdrant", "qdrant", "tar.gz"), ("n8n", "workflows", "json")]
now = datetime.datetime.fromtimestamp(int(sys.argv[3]))
for c, _, _ in kinds:
    os.makedirs(os.path.join(root, c))
for i in range(n):
    c, prefix, ext = kinds[i % 4]
    ts = (now - datetime.timedelta(hours=i // 4)).strftime("%Y%m%d_%H%M%S")
    name = f"{prefix}_{ts}.{ext}"
    open(os.path.join(root, c, name), "w").close()
    with open(os.path.join(root, c, name + ".sha256"), "w") as f:
        f.write(f"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  {name}\n")
PY
}

timed() { # label command...
    label=$1; shift
    /usr/bin/time -f "%e %M" -o "$work.time" "$@" > "$work.out" 2>/dev/null || true
    read -r wall rss < "$work.time"
    echo "  $label: wall=${wall}s peak_rss=$((rss / 1024))MiB lines=$(wc -l < "$work.out")"
}

for n in $((N / 10)) "$N"; do
    echo "artifacts=$n"
    make_tree "$n"; sync
    timed "backup-prune --dry-run (scan + plan)" "$bin" --backup-dir "$work" --days 30 --dry-run
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    p = json.loads(l)["path"]; print(p); print(p + ".sha256")' "$work.out" > "$work.list"
    # Alternating, on identical fresh trees: unlink timings on a busy disk vary a lot.
    for round in 1 2; do
        make_tree "$n"; sync
        timed "backup-prune (round $round)" "$bin" --backup-dir "$work" --days 30
        make_tree "$n"; sync
        timed "baseline xargs rm of the same files (round $round)" xargs -a "$work.list" rm
        left=$(find "$work" -type f | wc -l)
        echo "  files left after the baseline: $left"
    done
done
rm -rf "$work" "$work.out" "$work.time" "$work.list"
