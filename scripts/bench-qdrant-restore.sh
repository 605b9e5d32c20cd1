#!/bin/sh
# Benchmark (not a test): restore a SIZE_MIB (default 1024) Qdrant snapshot
# from a backup archive into the stand-in, comparing in one run, alternating:
#   before: qdrant-snap built at BEFORE_REV (default 396bae1, which unpacked
#           each snapshot into a temp file, checked it, then uploaded it)
#   after:  this tree's qdrant-snap (streams each snapshot from the archive
#           into the upload, hashing on the way; nothing staged)
# Reports wall time, peak RSS and the peak disk use of TMPDIR (polled every
# 50 ms) during the restore.
set -eu
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-2}
BEFORE_REV=${BEFORE_REV:-396bae1}
work=${BENCH_DIR:-/tmp/backup-kit-bench-qdrant-restore}
rm -rf "$work"; mkdir -p "$work/tmp"

cargo build --release --locked --quiet -p qdrant-snap -p test-harness
after="$(pwd)/target/release/qdrant-snap"
. scripts/bench-restore-lib.sh
build_before qdrant-snap

# A snapshot is a tar; incompressible data, as real vectors mostly are.
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/vectors.bin"
tar -cf "$work/big.snapshot" -C "$work" vectors.bin
rm "$work/vectors.bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$(pwd)/target/release/qdrant-standin" "$port" "big=$work/big.snapshot" > "$work/url" &
standin=$!
trap 'kill $standin 2>/dev/null || true' EXIT INT TERM
url="http://127.0.0.1:$port"
# The stand-in hashes the snapshot before it serves the collection.
until curl -sf "$url/collections/big" >/dev/null; do sleep 0.2; done
QDRANT_URL=$url "$after" backup --collection big --backup-dir "$work/tree" > /dev/null
archive=$(ls "$work"/tree/qdrant/qdrant_[0-9]*.tar.gz)
rm "$work/big.snapshot"

: > "$work/results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    measure before env QDRANT_URL="$url" "$before" restore "$archive" --collection big --as "big_before_$i"
    measure after env QDRANT_URL="$url" "$after" restore "$archive" --collection big --as "big_after_$i"
    i=$((i + 1))
done
summarize
rm -rf "$work"
