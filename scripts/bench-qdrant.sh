#!/bin/sh
# Benchmark (not a test): download a SIZE_MIB (default 1024) snapshot from the
# Qdrant stand-in, comparing in one run, alternating:
#   baseline:    curl -o file URL && sha256sum file
#   qdrant-snap: backup --collection big (create, download hashed while it
#                streams into the tar.gz, publish)
# Reports wall time and peak RSS. Target: wall <= 1.0x baseline, RSS <= 32 MiB.
set -eu
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-2}
work=${BENCH_DIR:-/tmp/backup-kit-bench-qdrant}
cargo build --release --locked --quiet -p qdrant-snap -p test-harness
bin="$(pwd)/target/release"
rm -rf "$work"; mkdir -p "$work"
# Incompressible data, as real vectors mostly are.
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/big.snapshot"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/qdrant-standin" "$port" "big=$work/big.snapshot" > "$work/url" &
standin=$!
trap 'kill $standin 2>/dev/null || true' EXIT INT TERM
sleep 1
url="http://127.0.0.1:$port"

measure() { # label command...
    label=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2>&1
    read -r wall rss < "$work/time"
    echo "$label $wall $rss" >> "$work/results"
    echo "  $label: wall=${wall}s peak_rss=$((rss / 1024))MiB"
}
: > "$work/results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    name=$(curl -s -X POST "$url/collections/big/snapshots?wait=true" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["name"])')
    measure baseline sh -c "curl -s -o '$work/dl.snapshot' '$url/collections/big/snapshots/$name' && sha256sum '$work/dl.snapshot'"
    curl -s -X DELETE "$url/collections/big/snapshots/$name" > /dev/null
    rm -f "$work/dl.snapshot"
    measure qdrant-snap env QDRANT_URL="$url" "$bin/qdrant-snap" backup --collection big --backup-dir "$work/tree"
    rm -rf "$work/tree"
    i=$((i + 1))
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, rss = line.split()
    rows.setdefault(label, []).append((float(wall), int(rss) / 1024))
b = statistics.median(w for w, _ in rows["baseline"])
q = statistics.median(w for w, _ in rows["qdrant-snap"])
rss = max(r for _, r in rows["qdrant-snap"])
print(f"median wall: baseline {b:.2f}s, qdrant-snap {q:.2f}s, ratio {q / b:.2f} (target <= 1.0)")
print(f"qdrant-snap peak RSS {rss:.1f} MiB (target <= 32)")
PY
rm -rf "$work"
