#!/bin/sh
# Benchmark (not a test): verifying a ~SIZE_MIB (default 1024) MiB .sql.gz with
# its sidecar, in one run, alternating:
#   baseline:      gzip -t f && sha256sum -c f.sha256   (two reads)
#   backup-verify: f                                    (one read: decode + hash + trailer)
# Target: backup-verify wall <= 0.6x the baseline.
set -eu
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-2}
work=${BENCH_DIR:-/tmp/backup-kit-bench-verify}
cargo build --release --locked --quiet -p backup-verify
bin="$(pwd)/target/release/backup-verify"
rm -rf "$work"; mkdir -p "$work/postgres"
f="$work/postgres/db_20240101_000000.sql.gz"
echo "making a ${SIZE_MIB} MiB dump (SQL of random-ish rows, level 1)" >&2
python3 - "$SIZE_MIB" <<'PY' | gzip -1 > "$f"
import base64, os, sys
target = int(sys.argv[1]) * 1024 * 1024 * 13 // 10   # text that gzips to about 1/1.3 of its size
out = sys.stdout.buffer
out.write(b"--\n-- PostgreSQL database dump\n--\n\nCOPY public.t (id, payload) FROM stdin;\n")
written, i = 0, 0
while written < target:
    block = b"".join(b"%d\t%s\n" % (i + k, base64.b64encode(os.urandom(48))) for k in range(10000))
    out.write(block); written += len(block); i += 10000
out.write(b"\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n")
PY
(cd "$work/postgres" && sha256sum "$(basename "$f")" > "$(basename "$f").sha256")
echo "compressed size: $(stat -c %s "$f") bytes" >&2

: > "$work/results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    /usr/bin/time -f "baseline %e %M" -a -o "$work/results" sh -c "gzip -t '$f' && cd '$work/postgres' && sha256sum -c --quiet '$(basename "$f").sha256'"
    /usr/bin/time -f "backup-verify %e %M" -a -o "$work/results" "$bin" "$f" > /dev/null
    i=$((i + 1))
done
cat "$work/results"
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, rss = line.split()
    rows.setdefault(label, []).append((float(wall), int(rss) / 1024))
b = statistics.median(w for w, _ in rows["baseline"])
v = statistics.median(w for w, _ in rows["backup-verify"])
print(f"median wall: baseline {b:.2f}s, backup-verify {v:.2f}s, ratio {v / b:.2f} (target <= 0.6)")
print(f"backup-verify peak RSS {max(r for _, r in rows['backup-verify']):.1f} MiB")
PY
rm -rf "$work"
