#!/bin/sh
# Benchmark (not a test): a bucket of ~SIZE_MIB (default 1024) MiB in ~2,000
# objects of mixed sizes and kinds on s3s-fs; compared in one run, alternating:
#   baseline:   rclone copy (Debian's rclone) into a folder, then tar czf
#   minio-snap: backup --type full
# Also: peak RSS for a quarter-size bucket against the full one, an
# incremental after changing 1% of the objects against a full backup, and each
# round a full backup with encryption on (age, a throwaway key) against off.
# Targets: wall <= 0.5x baseline; RSS <= 64 MiB, not growing with the bucket;
# incremental <= 10% of a full backup's time.
set -eu
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-2}
work=${BENCH_DIR:-/tmp/backup-kit-bench-minio}
S3S_FS_BIN=${S3S_FS_BIN:-/opt/backup-kit/s3s-fs/bin/s3s-fs}
command -v rclone >/dev/null 2>&1 || apt-get install -y -qq rclone >/dev/null
cargo build --release --locked --quiet -p minio-snap
tool="$(pwd)/target/release/minio-snap"
rm -rf "$work"; mkdir -p "$work/s3" "$work/src"
recipient=$(age-keygen -o "$work/age.key" 2>&1 | sed -n 's/^Public key: //p')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$S3S_FS_BIN" --host 127.0.0.1 --port "$port" --access-key benchkey --secret-key benchsecret "$work/s3" > /dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM
sleep 1
# rclone's S3 backend refuses a custom CA bundle on its transport; none is needed on loopback.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ACCESS_KEY_ID=benchkey \
    RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=benchsecret RCLONE_CONFIG_S3_ENDPOINT="http://127.0.0.1:$port" \
    RCLONE_CONFIG_S3_FORCE_PATH_STYLE=true
export MINIO_ENDPOINT="http://127.0.0.1:$port" MINIO_ROOT_USER=benchkey MINIO_ROOT_PASSWORD=benchsecret

make_bucket() { # name size_mib
    rm -rf "$work/src"; mkdir -p "$work/src"
    python3 - "$work/src" "$2" <<'PY'
import os, random, sys
root, target = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
rnd = random.Random(42)
n, total = 0, 0
words = [b"invoice", b"customer", b"total", b"amount", b"vector", b"document", b"page"]
while total < target:
    kind = rnd.random()   # ~512 KiB on average: ~2,000 objects per GiB
    if kind < 0.90:
        size = rnd.randint(2_000, 200_000)
    elif kind < 0.99:
        size = rnd.randint(1 << 20, 4 << 20)
    else:
        size = 20 << 20
    size = min(size, target - total) or 1
    if rnd.random() < 0.5:   # text-like, compressible
        data = b" ".join(rnd.choice(words) for _ in range(size // 7 + 1))[:size]
    else:                    # binary, incompressible
        data = os.urandom(size)
    path = os.path.join(root, f"dir{n % 23:02d}", f"object-{n:05d}.bin")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(data)
    n += 1; total += size
print(f"{n} objects, {total} bytes", file=sys.stderr)
PY
    rclone mkdir "s3:$1" && rclone copy --transfers 8 "$work/src" "s3:$1"
}

timed() { # label command...
    label=$1; shift
    /usr/bin/time -f "$label %e %M" -a -o "$work/results" "$@" > "$work/last.out" 2>&1
    tail -n 1 "$work/results" >&2
}
: > "$work/results"
echo "filling buckets (quarter: $((SIZE_MIB / 4)) MiB, full: $SIZE_MIB MiB)" >&2
make_bucket quarter $((SIZE_MIB / 4))
make_bucket documents "$SIZE_MIB"

i=1
while [ "$i" -le "$ROUNDS" ]; do
    rm -rf "$work/copy" "$work/base.tar.gz" "$work/tree"
    timed baseline sh -c "rclone copy --transfers 8 s3:documents '$work/copy' && tar czf '$work/base.tar.gz' -C '$work/copy' ."
    timed minio-snap-full "$tool" backup --bucket documents --backup-dir "$work/tree"
    rm -rf "$work/sealed"
    timed minio-snap-full-age env BACKUP_AGE_RECIPIENTS="$recipient" "$tool" backup --bucket documents --backup-dir "$work/sealed"
    i=$((i + 1))
done
timed minio-snap-quarter "$tool" backup --bucket quarter --backup-dir "$work/tree-q"
# Change 1% of the objects, then an incremental.
changed=0
for key in $(cd "$work/src" && find . -type f | sed 's|^\./||' | sort | awk 'NR % 100 == 0'); do
    head -c 50000 /dev/urandom > "$work/changed"
    rclone copyto "$work/changed" "s3:documents/$key"
    changed=$((changed + 1))
done
echo "changed $changed objects" >&2
sleep 1
timed minio-snap-incremental "$tool" backup --bucket documents --backup-dir "$work/tree" --type incremental
grep '"component"' "$work/last.out" >&2
ls -la "$work/tree/minio" "$work/base.tar.gz" >&2
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, rss = line.split()
    rows.setdefault(label, []).append((float(wall), int(rss) / 1024))
med = lambda k: statistics.median(w for w, _ in rows[k])
b, f = med("baseline"), med("minio-snap-full")
print(f"full backup: baseline {b:.2f}s, minio-snap {f:.2f}s, ratio {f / b:.2f} (target <= 0.5)")
print(f"peak RSS: quarter bucket {rows['minio-snap-quarter'][0][1]:.1f} MiB, full bucket {max(r for _, r in rows['minio-snap-full']):.1f} MiB (target <= 64, flat)")
a = med("minio-snap-full-age")
rss = lambda k: statistics.median(r for _, r in rows[k])
print(f"encryption on/off: wall {a / f:.3f} (target <= 1.05), peak RSS {rss('minio-snap-full-age') - rss('minio-snap-full'):+.1f} MiB (target <= 4)")
inc = rows["minio-snap-incremental"][0][0]
print(f"incremental after changing 1%: {inc:.2f}s = {inc / f:.0%} of a full backup (target <= 10%)")
PY
