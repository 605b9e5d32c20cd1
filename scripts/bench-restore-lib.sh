# Shared by bench-qdrant-restore.sh, bench-minio-restore.sh,
# bench-minio-scale.sh and bench-minio-small.sh (sourced, with $work set, and
# $BEFORE_REV for build_before): the "before" build, an s3s-fs to work on (or
# a fresh one for a restore), one restore measured, and the summary of every
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

# start_s3s_fs [FOLDER]: s3s-fs on a free port serving the buckets in FOLDER
# (default $work/s3; its folders), stopped when the script (or the subshell
# that started it) ends; the MINIO_* variables point at it.
start_s3s_fs() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${S3S_FS_BIN:-/opt/backup-kit/s3s-fs/bin/s3s-fs}" --host 127.0.0.1 --port "$port" \
        --access-key benchkey --secret-key benchsecret "${1:-$work/s3}" > /dev/null 2>&1 &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT INT TERM
    export MINIO_ENDPOINT="http://127.0.0.1:$port" MINIO_ROOT_USER=benchkey MINIO_ROOT_PASSWORD=benchsecret
    until curl -s -o /dev/null "$MINIO_ENDPOINT"; do sleep 0.2; done
}

# on_fresh_s3s_fs COMMAND...: COMMAND (a program or a function of the script)
# run against an s3s-fs of its own on an empty folder, after a sync (no
# write-back of earlier steps), in a subshell whose end stops that server.
# s3s-fs keeps two files per object in its root folder, which removing a
# bucket's folder leaves behind: after one restore of 30,000 objects (60,000
# files left) the same restore again took 9.4 s instead of 7.1 s, so
# whichever restore came second would pay for the first.
on_fresh_s3s_fs() {
    (
        rm -rf "$work/s3-fresh"; mkdir "$work/s3-fresh"
        start_s3s_fs "$work/s3-fresh"
        export RCLONE_CONFIG_S3_ENDPOINT="$MINIO_ENDPOINT"
        sync
        "$@"
    )
    rm -rf "$work/s3-fresh"
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
