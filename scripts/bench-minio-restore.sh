#!/bin/sh
# Benchmark (not a test): restore a ~SIZE_MIB (default 1024) MiB bucket backup
# into an empty bucket on s3s-fs, comparing in one run, alternating:
#   before: minio-snap built at BEFORE_REV (default 396bae1, which wrote each
#           object to a temp file, checked it, then uploaded it from there)
#   after:  this tree's minio-snap (streams each object from the archive into
#           its upload, hashed on the way; nothing staged)
# The bucket: 24 objects of 32 MiB and one of 256 MiB, incompressible (every
# one a multipart upload). Reports wall time, peak RSS and the peak disk use
# of TMPDIR (polled every 50 ms) during the restore.
set -eu
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-2}
BEFORE_REV=${BEFORE_REV:-396bae1}
work=${BENCH_DIR:-/tmp/backup-kit-bench-minio-restore}
rm -rf "$work"; mkdir -p "$work/s3" "$work/src" "$work/tmp"

cargo build --release --locked --quiet -p minio-snap
after="$(pwd)/target/release/minio-snap"
. scripts/bench-restore-lib.sh
build_before minio-snap

start_s3s_fs

# s3s-fs keeps objects as files: the bucket is a folder of them.
big=$((SIZE_MIB / 4)); each=$(((SIZE_MIB - big) / 24))
mkdir -p "$work/s3/documents"
head -c "$((big * 1024 * 1024))" /dev/urandom > "$work/s3/documents/big.bin"
i=1
while [ "$i" -le 24 ]; do
    head -c "$((each * 1024 * 1024))" /dev/urandom > "$work/s3/documents/part-$i.bin"
    i=$((i + 1))
done
MINIO_BUCKET=documents "$after" backup --backup-dir "$work/tree" > /dev/null
archive=$(ls "$work"/tree/minio/documents_[0-9]*.tar.gz)
rm -rf "$work/s3/documents"

: > "$work/results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    measure before env MINIO_BUCKET="before$i" "$before" restore "$archive"
    rm -rf "$work/s3/before$i"
    measure after env MINIO_BUCKET="after$i" "$after" restore "$archive"
    rm -rf "$work/s3/after$i"
    i=$((i + 1))
done
summarize
rm -rf "$work"
