# Shared by bench-qdrant-restore.sh, bench-minio-restore.sh and
# bench-minio-scale.sh (sourced, with $work and $BEFORE_REV set): the "before"
# build, an s3s-fs to work on, one restore measured, and the summary of every
# one.

# Every restore appends its audit line; a restore that cannot, does not start.
export BACKUP_AUDIT_LOG="$work/audit.log"

# build_before PACKAGE: builds PACKAGE at $BEFORE_REV (in a worktree removed
# again right after) and sets $before to its binary. BEFORE_TARGET: a cargo
# target folder that keeps that build between runs.
build_before() {
    before_src=$work/before-src
    before_target=${BEFORE_TARGET:-$work/before-target}
    git worktree add --detach -f "$before_src" "$BEFORE_REV" >/dev/null 2>&1
    (cd "$before_src" && CARGO_TARGET_DIR="$before_target" cargo build --release --locked --quiet -p "$1") ||
        { git worktree remove --force "$before_src"; return 1; }
    git worktree remove --force "$before_src"
    before="$before_target/release/$1"
}

# start_s3s_fs: s3s-fs on a free port serving the buckets in $work/s3 (its
# folders), stopped when the script ends; the MINIO_* variables point at it.
start_s3s_fs() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${S3S_FS_BIN:-/opt/backup-kit/s3s-fs/bin/s3s-fs}" --host 127.0.0.1 --port "$port" \
        --access-key benchkey --secret-key benchsecret "$work/s3" > /dev/null 2>&1 &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT INT TERM
    export MINIO_ENDPOINT="http://127.0.0.1:$port" MINIO_ROOT_USER=benchkey MINIO_ROOT_PASSWORD=benchsecret
    until curl -s -o /dev/null "$MINIO_ENDPOINT"; do sleep 0.2; done
}

# measure LABEL COMMAND...: runs COMMAND with TMPDIR=$work/tmp; records wall
# time, peak RSS and the peak disk use of TMPDIR (polled every 50 ms).
measure() {
    label=$1; shift
    mkdir -p "$work/tmp"
    : > "$work/disk"
    ( while :; do du -sk "$work/tmp" | cut -f1 >> "$work/disk"; sleep 0.05; done ) &
    poller=$!
    TMPDIR="$work/tmp" /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2>&1
    kill "$poller"; wait "$poller" 2>/dev/null || true
    read -r wall rss < "$work/time"
    disk=$(sort -n "$work/disk" | tail -n 1)
    echo "$label $wall $rss $disk" >> "$work/results"
    echo "  $label: wall=${wall}s peak_rss=$((rss / 1024))MiB peak_tmp_disk=$((disk / 1024))MiB"
}

# summarize: medians of wall time, the peaks, and after/before.
summarize() {
    python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, rss, disk = line.split()
    rows.setdefault(label, []).append((float(wall), int(rss) / 1024, int(disk) / 1024))
for label in ("before", "after"):
    r = rows[label]
    print(f"{label}: median wall {statistics.median(w for w, _, _ in r):.2f}s, "
          f"peak RSS {max(x for _, x, _ in r):.1f} MiB, peak temp disk {max(d for _, _, d in r):.0f} MiB")
b = statistics.median(w for w, _, _ in rows["before"])
a = statistics.median(w for w, _, _ in rows["after"])
print(f"wall ratio after/before {a / b:.2f}")
PY
}
