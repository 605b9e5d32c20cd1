#!/bin/sh
# Benchmark (not a test): a bucket of N (default 30000) small objects of
# 0.2–6 KB on s3s-fs (written straight into its folder, which is how s3s-fs
# keeps objects). Compared in one run, alternating:
#   rclone copy --transfers 8, 32 and 64 into a folder, then tar czf — the
#   fastest of these is the server's pace to match;
#   minio-snap backup --type full;
#   minio-snap backup --type incremental after changing 1% of the objects;
#   tar -xzf of rclone's copy + rclone copy --transfers 32 into an empty
#   bucket, against minio-snap restore of the full archive into another.
# Each restore gets an s3s-fs of its own on an empty folder
# (on_fresh_s3s_fs in bench-restore-lib.sh says why).
# Targets (issue #18): full <= 0.6x the fastest rclone + tar; incremental
# <= 10% of the full backup; restore <= 0.5x tar -xzf + rclone copy.
# Reports wall time and peak RSS.
set -eu
cd "$(dirname "$0")/.."
N=${N:-30000}
ROUNDS=${ROUNDS:-2}
work=${BENCH_DIR:-/tmp/backup-kit-bench-minio-small}
cargo build --release --locked --quiet -p minio-snap
tool="$(pwd)/target/release/minio-snap"
rm -rf "$work"; mkdir -p "$work/s3/small"
. scripts/bench-restore-lib.sh
python3 - "$work/s3/small" "$N" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
for i in range(n):
    d = os.path.join(root, f"d{i % 97:02d}")
    os.makedirs(d, exist_ok=True)
    size = rnd.randint(200, 6000)
    data = os.urandom(size // 2) + b"x" * (size - size // 2)
    open(os.path.join(d, f"obj-{i:06d}.json"), "wb").write(data)
PY
start_s3s_fs
export MINIO_BUCKET=small
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ACCESS_KEY_ID=benchkey \
    RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=benchsecret RCLONE_CONFIG_S3_ENDPOINT="$MINIO_ENDPOINT" \
    RCLONE_CONFIG_S3_FORCE_PATH_STYLE=true

timed() { # label command...
    label=$1; shift
    /usr/bin/time -f "$label %e %M" -a -o "$work/results" "$@" > /dev/null 2>&1
    tail -n 1 "$work/results" >&2
}
: > "$work/results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    for t in 8 32 64; do
        rm -rf "$work/copy" "$work/copy.tar.gz"
        timed "rclone$t" sh -c "rclone copy --transfers $t s3:small '$work/copy' && tar czf '$work/copy.tar.gz' -C '$work' copy"
    done
    # The restores start from what the backups made: rclone's tarball …
    rm -rf "$work/copy" "$work/unpacked"; mkdir "$work/unpacked"
    on_fresh_s3s_fs timed restore-rclone sh -c "tar -xzf '$work/copy.tar.gz' -C '$work/unpacked' && rclone copy --transfers 32 '$work/unpacked/copy' s3:restored"
    rm -rf "$work/copy.tar.gz" "$work/unpacked" "$work/tree"
    timed full "$tool" backup --backup-dir "$work/tree"
    # … and minio-snap's archive.
    on_fresh_s3s_fs timed restore env MINIO_BUCKET=restored "$tool" restore "$work/tree/minio/small_latest.tar.gz"
    # 1% of the objects changed, then an incremental on that full backup.
    python3 - "$work/s3/small" "$N" "$i" <<'PY'
import os, sys
root, n, r = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(0, n, 100):
    p = os.path.join(root, f"d{i % 97:02d}", f"obj-{i:06d}.json")
    open(p, "ab").write(f"changed in round {r}".encode())
PY
    timed incremental "$tool" backup --type incremental --backup-dir "$work/tree"
    i=$((i + 1))
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, rss = line.split()
    rows.setdefault(label, []).append((float(wall), int(rss) / 1024))
med = {k: statistics.median(w for w, _ in v) for k, v in rows.items()}
fastest = min(("rclone8", "rclone32", "rclone64"), key=med.get)
for k in ("rclone8", "rclone32", "rclone64", "full", "incremental", "restore-rclone", "restore"):
    print(f"{k}: median wall {med[k]:.2f}s, peak RSS {max(r for _, r in rows[k]):.1f} MiB")
print(f"full / fastest rclone + tar ({fastest}): {med['full'] / med[fastest]:.2f} (target <= 0.6)")
print(f"incremental / full: {med['incremental'] / med['full']:.2f} (target <= 0.10)")
print(f"restore / (tar -xzf + rclone copy --transfers 32): {med['restore'] / med['restore-rclone']:.2f} (target <= 0.5)")
PY
rm -rf "$work"
