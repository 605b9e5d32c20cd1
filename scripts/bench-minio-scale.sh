#!/bin/sh
# Benchmark (not a test): memory against the number of objects. For buckets
# of N empty-or-tiny objects (SIZES, default "10000 100000"; 1000000 works,
# see below) on s3s-fs — written straight into its folder, which is how
# s3s-fs keeps objects — peak RSS and wall time of:
#   minio-snap backup (full);
#   minio-snap backup --type incremental after changing 1% of the objects;
#   backup-verify --all (both archives);
#   minio-snap restore of that incremental (its chain) into an empty bucket;
#   minio-snap restore-test of it (the drill: restore into a scratch bucket,
#   every object read back and compared, the scratch bucket removed);
# the last two each on an s3s-fs of its own (on_fresh_s3s_fs in
# bench-restore-lib.sh says why),
# for this tree and for BEFORE_REV (default f96ca27, before the manifest was
# streamed), each on its own copy of the bucket, in one run.
# Target (issue #18): peak RSS <= 64 MiB at 1,000,000 objects, flat in N.
# s3s-fs walks the whole bucket for every page of a listing (1,000 keys), so
# a listing costs N^2/1000 file lookups: 1,000,000 objects take hours there.
set -eu
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 100000"}
BEFORE_REV=${BEFORE_REV:-f96ca27}
VERSIONS=${VERSIONS:-"before after"}
work=${BENCH_DIR:-/tmp/backup-kit-bench-minio-scale}
rm -rf "$work"; mkdir -p "$work/s3"
. scripts/bench-restore-lib.sh
cargo build --release --locked --quiet -p minio-snap -p backup-verify
after_snap="$(pwd)/target/release/minio-snap"
after_verify="$(pwd)/target/release/backup-verify"
case " $VERSIONS " in *" before "*)
    build_before minio-snap; before_snap=$before
    build_before backup-verify; before_verify=$before ;;
esac

start_s3s_fs

timed() { # label command...
    label=$1; shift
    /usr/bin/time -f "$label %e %M" -a -o "$work/results" "$@" > /dev/null 2> "$work/stderr" ||
        { echo "$label failed:" >&2; tail -n 5 "$work/stderr" >&2; exit 1; }
    tail -n 1 "$work/results" >&2
}

# make BUCKET N: N objects of 0-16 bytes in 1000 folders.
make_bucket() {
    python3 - "$work/s3/$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(min(n, 1000)):
    os.makedirs(os.path.join(root, f"d{d:03d}"), exist_ok=True)
for i in range(n):
    with open(os.path.join(root, f"d{i % 1000:03d}", f"o{i:07d}"), "wb") as f:
        f.write(b"x" * (i % 17))
PY
}

# change BUCKET N: 1% of the objects rewritten.
change() {
    python3 - "$work/s3/$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 100):
    with open(os.path.join(root, f"d{i % 1000:03d}", f"o{i:07d}"), "ab") as f:
        f.write(b"changed")
PY
}

: > "$work/results"
for n in $SIZES; do
    for v in $VERSIONS; do
        eval "snap=\$${v}_snap verify=\$${v}_verify"
        bucket="b$v$n"; tree="$work/tree-$v-$n"
        make_bucket "$bucket" "$n"
        export MINIO_BUCKET="$bucket" BACKUP_DIR="$tree"
        timed "$v full $n" "$snap" backup
        change "$bucket" "$n"
        timed "$v incremental $n" "$snap" backup --type incremental
        timed "$v verify $n" "$verify" --all
        incr=$(ls "$tree/minio/"*.incr.tar.gz)
        on_fresh_s3s_fs timed "$v restore $n" env MINIO_BUCKET="r$v$n" "$snap" restore "$incr"
        on_fresh_s3s_fs timed "$v drill $n" "$snap" restore-test "$incr"
        rm -rf "$work/s3/$bucket" "$tree"
    done
done
python3 - "$work/results" "$VERSIONS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    v, phase, n, wall, rss = line.split()
    rows[(v, phase, int(n))] = (float(wall), int(rss) / 1024)
versions = sys.argv[2].split()
print("objects | phase | " + " | ".join(f"{v} RSS MiB | {v} wall s" for v in versions))
for n in sorted({k[2] for k in rows}):
    for phase in ("full", "incremental", "verify", "restore", "drill"):
        cells = " | ".join(f"{rows[(v, phase, n)][1]:.1f} | {rows[(v, phase, n)][0]:.1f}"
                           for v in versions if (v, phase, n) in rows)
        print(f"{n} | {phase} | {cells}")
PY
rm -rf "$work"
