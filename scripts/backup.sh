#!/bin/sh
# backup.sh — one backup run of the whole stack (or of the components named):
# the component tools, weekly promotion, retention, verification and the report.
# Thin on purpose: every decision about data lives in the Rust tools; this only
# sequences them, and runs under busybox sh.
set -u

# A signal stops the tool that is running (it removes its temporary file and
# prints a failed record) and then the run, which still writes its report. The
# report itself (and the hooks after it) is never stopped: an interrupted run
# must say so. Set first of all, so that no moment of the run is unguarded.
interrupted=
protected=
child=
on_signal() {
    interrupted=$1
    [ -n "$child" ] && [ -z "$protected" ] && kill -TERM "$child" 2>/dev/null
}
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT
trap 'on_signal SIGHUP' HUP

usage() {
    cat <<'EOF'
Usage: backup.sh [--type full|incremental] [--weekly] [--component NAME]...

Backs up the selected components (default: $BACKUP_COMPONENTS, else
postgres minio qdrant n8n) into $BACKUP_DIR (default /data/backups), then
promotes the weekly snapshot (on Sundays in $TZ, or with --weekly), prunes
(backup-prune), verifies what this run made (backup-verify) and writes
backup_report.json (backup-report). Log lines go to stderr and backup.log.
POSTGRES_DB and MINIO_BUCKET may name several databases / buckets (a,b,c) or
`all`: each is a series of its own, and the component succeeded only if every
one of its series did.

  --type full|incremental  incremental: MinIO archives only what changed since
                           its last backup; the other components are always full
  --weekly                 promote this run's backups to weekly/YYYY_WNN/ today
                           (runs on $BACKUP_WEEKLY_DAY, default 7 = Sunday, always do)
  --component NAME         postgres, minio, qdrant or n8n; repeatable
  -h, --help               this text

Optional hooks (environment):
  BACKUP_NOTIFY_URLS       when a run ends, a short message to each URL (ntfy://,
                           gotify://, slack://, discord://, telegram://, matrix://,
                           smtp://, https://; see the README) as BACKUP_NOTIFY_LEVEL
                           says: error (default: runs not completed), always, never
  BACKUP_NOTIFY_URL        the report JSON is POSTed here after every run (older form)
  BACKUP_HEALTHCHECK_URL   pinged at start (/start), on success and on failure (/fail)
  BACKUP_OFFSITE_REMOTE    after a successful run: upload the tree to this rclone remote,
                           every file sent checked by hash (BACKUP_OFFSITE_MODE: copy,
                           the default, never deletes or overwrites there; sync mirrors;
                           BACKUP_OFFSITE_BWLIMIT: rclone's --bwlimit)
  BACKUP_PROMETHEUS_FILE   node_exporter textfile metrics, written with the report
  BACKUP_RESTORE_TEST      never, weekly (default: drill the weekly snapshot when
                           one is promoted) or always (after every run)

Exit status: 0 when every selected component succeeded (and was verified),
1 otherwise, 2 on a usage error, 75 when another run holds the lock.
EOF
}

die_usage() {
    printf 'backup.sh: %s (see --help)\n' "$1" >&2
    exit 2
}

backup_type=full
weekly=
components=
while [ $# -gt 0 ]; do
    case $1 in
    --type)
        [ $# -ge 2 ] || die_usage "--type needs full or incremental"
        backup_type=$2
        shift
        ;;
    --type=*) backup_type=${1#--type=} ;;
    --weekly) weekly=1 ;;
    --component)
        [ $# -ge 2 ] || die_usage "--component needs a name"
        components="$components $2"
        shift
        ;;
    --component=*) components="$components ${1#--component=}" ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die_usage "unknown argument: $1" ;;
    esac
    shift
done
case $backup_type in
full | incremental) ;;
*) die_usage "--type must be full or incremental, not '$backup_type'" ;;
esac
[ -n "$components" ] || components=${BACKUP_COMPONENTS:-postgres minio qdrant n8n}
selected=
for c in $components; do
    case $c in
    postgres | minio | qdrant | n8n) ;;
    *) die_usage "unknown component '$c' (postgres, minio, qdrant, n8n)" ;;
    esac
    case " $selected " in
    *" $c "*) ;;
    *) selected="$selected $c" ;;
    esac
done

BACKUP_DIR=${BACKUP_DIR:-/data/backups}
export BACKUP_DIR
umask 077
if ! mkdir -p "$BACKUP_DIR" 2>/dev/null || [ ! -w "$BACKUP_DIR" ]; then
    printf 'backup.sh: cannot write to BACKUP_DIR %s; check that it exists and belongs to this user\n' \
        "$BACKUP_DIR" >&2
    exit 1
fi
log_file=$BACKUP_DIR/backup.log

stamp() {
    # RFC 3339 with a colon in the offset, as the tools' log lines.
    date +%Y-%m-%dT%H:%M:%S%z | sed 's/\(..\)$/:\1/'
}

# One run at a time. The component tools lock their own folders; this lock is
# the run's, so two cron lines that overlap do not interleave their reports.
lock_file=$BACKUP_DIR/.backup.lock
exec 9>>"$lock_file"
if ! flock -n 9; then
    line="$(stamp) backup: another backup.sh run holds $lock_file; not starting a second one"
    printf '%s\n' "$line" >&2
    printf '%s\n' "$line" >>"$log_file"
    exit 75
fi
# For the container's entrypoint, which stops a running backup on `docker stop`.
pid_file=$BACKUP_DIR/.backup.pid
printf '%s\n' "$$" >"$pid_file"
# A dying reader (the log's tee) must not kill the run with SIGPIPE: writes to
# it fail instead, and the run still ends with its report.
trap '' PIPE

# backup.log: rotated when it has passed 10 MiB, five old ones kept.
if [ -f "$log_file" ] && [ "$(wc -c <"$log_file")" -gt 10485760 ]; then
    i=4
    while [ $i -ge 1 ]; do
        [ -f "$log_file.$i" ] && mv -f "$log_file.$i" "$log_file.$((i + 1))"
        i=$((i - 1))
    done
    mv -f "$log_file" "$log_file.1"
fi

# Every log line (ours and the tools' stderr) goes through one pipe to both
# backup.log and stderr, in order, while the run goes on. The run's folder
# (records, logs, the fifo) is outside the tree, in TMPDIR: a tree that fills
# up must not take the report's inputs with it. Its path is noted in the tree
# (.backup-run), so that the next run of this tree (holding the lock) removes
# what a killed one left behind — and only that: other trees' runs may share
# TMPDIR. Older versions kept it in the tree.
scratch=${TMPDIR:-/tmp}
if stale=$(cat "$BACKUP_DIR/.backup-run" 2>/dev/null); then
    case $stale in "$scratch"/backup-kit-run.*) [ -O "$stale" ] && rm -rf "$stale" ;; esac
fi
for stale in "$BACKUP_DIR"/.backup-run.* "$BACKUP_DIR"/.offsite.json.*; do
    [ -e "$stale" ] && rm -rf "$stale"
done
run_dir=$(mktemp -d "$scratch/backup-kit-run.XXXXXX") || exit 1
printf '%s\n' "$run_dir" >"$BACKUP_DIR/.backup-run" 2>/dev/null
cleanup() {
    exec 8>&- 2>/dev/null
    [ -n "${tee_pid:-}" ] && wait "$tee_pid" 2>/dev/null
    rm -rf "$run_dir"
    rm -f "$pid_file" "$BACKUP_DIR/.backup-run"
}
trap cleanup EXIT
mkfifo "$run_dir/log" || exit 1
# In a session of its own, like every tool: a SIGTERM to this script's whole
# process group (docker stop, a terminal's ^C) reaches only the script, whose
# trap then stops the running tool in order, and the log keeps its tail.
setsid tee -a "$log_file" <"$run_dir/log" >&2 &
tee_pid=$!
exec 8>"$run_dir/log"

log() {
    printf '%s backup: %s\n' "$(stamp)" "$*" >&8
}


# Runs a command in the background (so a signal reaches the trap at once) with
# stderr into the log; sets $rc.
run_logged() {
    out=$1
    shift
    setsid "$@" >"$out" 2>&8 </dev/null &
    child=$!
    # A signal that came while the tool was being started found no $child.
    [ -z "$interrupted" ] || [ -n "$protected" ] || kill -TERM "$child" 2>/dev/null
    wait "$child"
    rc=$?
    # wait returns early when a trapped signal arrives: wait for the tool itself.
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        rc=$?
    done
    child=
}

# JSON string contents: backslashes and quotes escaped, control characters dropped.
json_escape() {
    printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'
}

failed_record() { # component error seconds
    printf '{"component":"%s","status":"failed","duration_seconds":%s,"error":"%s"}\n' \
        "$1" "$3" "$(json_escape "$2")"
}

tool_of() {
    case $1 in
    postgres) echo pg-dumpwrap ;;
    minio) echo minio-snap ;;
    qdrant) echo qdrant-snap ;;
    n8n) echo n8n-export ;;
    esac
}

# Healthchecks.io-style pings. URLs can carry tokens, so
# they reach curl through its config on stdin, never through argv or the log.
http_post() { # url [file-to-send]
    escaped=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')
    if [ -n "${2:-}" ]; then
        printf 'url = "%s"\n' "$escaped" | curl -fsS -m 30 --retry 3 -K - \
            -H 'Content-Type: application/json' --data-binary "@$2" -o /dev/null
    else
        printf 'url = "%s"\n' "$escaped" | curl -fsS -m 30 --retry 3 -K - -X POST -o /dev/null
    fi
}
ping_health() { # suffix [file]
    [ -n "${BACKUP_HEALTHCHECK_URL:-}" ] || return 0
    body=
    [ -n "${2:-}" ] && [ -f "$2" ] && body=$2
    if ! http_post "${BACKUP_HEALTHCHECK_URL%/}$1" "$body" 2>"$run_dir/curl.err"; then
        log "warning: the healthcheck ping${1:+ ($1)} failed: $(head -n 1 "$run_dir/curl.err"); check BACKUP_HEALTHCHECK_URL"
    fi
}

started=$(date +%s)
# What this run writes is newer than this (a second before the start, as
# find compares whole seconds): the off-site step checks those files.
touch -t "$(date -d "@$((started - 1))" +%Y%m%d%H%M.%S)" "$run_dir/started"
log "starting a backup ($backup_type) of:$selected (pid $$)"
ping_health /start

# 1. The component tools, one after another; one failing does not stop the others.
made=
failed=
for c in $selected; do
    if [ -n "$interrupted" ]; then
        failed_record "$c" "not run: backup.sh was interrupted by $interrupted" 0 >"$run_dir/$c.json"
        failed="$failed $c"
        continue
    fi
    tool=$(tool_of "$c")
    t0=$(date +%s)
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "$c: $tool is not on PATH ($PATH); check the installation"
        failed_record "$c" "$tool is not on PATH; check the installation" 0 >"$run_dir/$c.json"
        failed="$failed $c"
        continue
    fi
    if [ "$c" = minio ]; then
        run_logged "$run_dir/$c.json" "$tool" backup --type "$backup_type"
    else
        run_logged "$run_dir/$c.json" "$tool" backup
    fi
    # A tool exits 0 only once its backup is published and its record printed.
    if [ "$rc" -eq 0 ]; then
        made="$made $c"
    else
        failed="$failed $c"
        if ! grep -q '"status":"failed"' "$run_dir/$c.json"; then
            # No record of its own (a crash, a bad flag, a signal before it was
            # ready): say so for the report.
            why="exited with status $rc without a result record; see backup.log"
            [ -z "$interrupted" ] || why="was interrupted by $interrupted before it reported"
            failed_record "$c" "$tool $why" $(($(date +%s) - t0)) >"$run_dir/$c.json"
        fi
    fi
done

# 2. Weekly promotion: `backup-prune promote` links this run's backup (a MinIO
# incremental with its whole chain) into weekly/YYYY_WNN/<component>/, copies
# and checks where a link cannot cross filesystems, and prints what it promoted
# for step 4. A week folder keeps one snapshot per component: the newest.
week=
# The day of the week (date +%u: 1 Monday … 7 Sunday) whose runs promote.
weekly_day=${BACKUP_WEEKLY_DAY:-7}
if [ -z "$interrupted" ] && { [ -n "$weekly" ] || [ "$(date +%u)" = "$weekly_day" ]; }; then
    week=$(date +%G_W%V)
    for c in $made; do
        run_logged "$run_dir/$c.verify" backup-prune promote --week "$week" "$run_dir/$c.json"
        if [ "$rc" -eq 0 ]; then
            log "$c: promoted to weekly/$week/$c"
        else
            : >"$run_dir/$c.verify"
            log "$c: weekly promotion to weekly/$week/$c failed; check free space and permissions"
            failed_record "$c" "published its backup but the weekly promotion to weekly/$week failed" \
                0 >>"$run_dir/$c.json"
            failed="$failed $c"
        fi
    done
fi

# 3. Retention. backup-prune never deletes the last good backups; a component
# lock held by a separate cron line only postpones it to the next run.
run_problem=
if [ -z "$interrupted" ]; then
    run_logged "$run_dir/prune.jsonl" backup-prune
    case $rc in
    0) ;;
    75) log "prune postponed: a component backup holds its folder's lock" ;;
    *)
        log "backup-prune failed (status $rc); see the lines above"
        run_problem=1
        ;;
    esac
fi

# 4. Read back what this run published (and promoted). A failure turns the
# component's success into a failure in the report.
for c in $made; do
    [ -z "$interrupted" ] || break
    case " $failed " in *" $c "*) continue ;; esac
    set -- --record "$run_dir/$c.json"
    if [ -f "$run_dir/$c.verify" ]; then
        while IFS= read -r p; do set -- "$@" "$p"; done <"$run_dir/$c.verify"
    fi
    run_logged "$run_dir/$c.checked" backup-verify "$@"
    cat "$run_dir/$c.checked" >&8
    if [ "$rc" -ne 0 ]; then
        reason=$(sed -n 's/^FAIL //p' "$run_dir/$c.checked" | head -n 1)
        failed_record "$c" "published its backup but backup-verify failed: ${reason:-status $rc}" 0 >>"$run_dir/$c.json"
        failed="$failed $c"
    fi
done

# 4b. The restore drill (BACKUP_RESTORE_TEST): `weekly` (the default) on the
# run that promoted a weekly snapshot, against what it holds; `always` after
# every run; `never`. Each component that this run backed up and verified is
# drilled: restored into scratch targets, compared, removed (backup-verify
# --restore-test keeps the outcome in restore_test.json for the report). A
# drill that fails fails its component, as any failure does.
drill_mode=${BACKUP_RESTORE_TEST:-weekly}
case $drill_mode in
never | weekly | always) ;;
*)
    log "warning: BACKUP_RESTORE_TEST=$drill_mode is none of never, weekly, always; drilling weekly"
    drill_mode=weekly
    ;;
esac
drill_from=
if [ -z "$interrupted" ]; then
    case $drill_mode in
    always) drill_from=${week:+weekly/$week} && drill_from=${drill_from:-latest} ;;
    weekly) [ -z "$week" ] || drill_from=weekly/$week ;;
    esac
fi
drilled=
for c in $made; do
    case " $failed " in *" $c "*) continue ;; esac
    drilled="$drilled $c"
done
if [ -n "$drill_from" ] && [ -n "$drilled" ]; then
    log "restore drill of:$drilled (from $drill_from)"
    set -- --restore-test --drill-from "$drill_from"
    for c in $drilled; do set -- "$@" --component "$c"; done
    run_logged "$run_dir/drill.out" backup-verify "$@"
    cat "$run_dir/drill.out" >&8
    drill_failed=
    for c in $drilled; do
        reason=$(grep "^FAIL .*/$c/" "$run_dir/drill.out" | head -n 1 | sed 's/^FAIL //')
        [ -n "$reason" ] || continue
        drill_failed=1
        failed_record "$c" "the restore drill failed: $reason" 0 >>"$run_dir/$c.json"
        failed="$failed $c"
    done
    if [ "$rc" -ne 0 ] && [ -z "$drill_failed" ]; then
        log "the restore drill failed (backup-verify status $rc); see the lines above"
        run_problem=1
    fi
fi

# 5. Off-site copy, only of a tree this run left good (BACKUP_OFFSITE_REMOTE,
# an rclone remote). `copy` (the default) uploads and never deletes or
# overwrites anything there: the artifacts with `--immutable --checksum` (a
# remote file that differs from ours fails the run and is named), then the
# reports, logs and *_latest links, which change every run. `sync` mirrors,
# deletions included. Every file this run sent is then compared by hash with
# the remote. The outcome goes to offsite.json for the report.
offsite_filters() { # the artifacts, their sidecars: no links, logs, temp or dot files
    for f in '- .*' '- .*/**' '- *_latest*' '+ /postgres/**' '+ /minio/**' '+ /qdrant/**' \
        '+ /n8n/**' '+ /weekly/**' '- *'; do
        printf '%s\n' "$f"
    done >"$run_dir/offsite.filter"
}
rclone_logged() { # what, then rclone's arguments; its log kept in $run_dir/rclone.log
    what=$1
    shift
    : >"$run_dir/rclone.log"
    run_logged /dev/null rclone "$@" --log-file "$run_dir/rclone.log" --log-level NOTICE
    cat "$run_dir/rclone.log" >&8
    [ "$rc" -eq 0 ] && return 0
    reason=$(grep -m 1 'ERROR' "$run_dir/rclone.log" | sed 's/^.*ERROR : //')
    [ -n "$reason" ] || reason=$(tail -n 1 "$run_dir/rclone.log" | sed 's/^[0-9/]* [0-9:]* //')
    offsite_error="$what failed (rclone status $rc): $reason"
    return 1
}
offsite() {
    mode=${BACKUP_OFFSITE_MODE:-copy}
    remote=$BACKUP_OFFSITE_REMOTE
    t0=$(date +%s)
    set --
    [ -z "${BACKUP_OFFSITE_BWLIMIT:-}" ] || set -- --bwlimit "$BACKUP_OFFSITE_BWLIMIT"
    # The files this run sent: what it published, and what it promoted
    # (hard links keep the mtime of what they link).
    (cd "$BACKUP_DIR" && find postgres minio qdrant n8n weekly -type f -newer "$run_dir/started" \
        ! -name '.*' 2>/dev/null) >"$run_dir/sent.unsorted"
    for v in "$run_dir"/*.verify; do
        [ -f "$v" ] || continue
        while IFS= read -r p; do
            printf '%s\n%s.sha256\n' "${p#"$BACKUP_DIR"/}" "${p#"$BACKUP_DIR"/}"
        done <"$v"
    done >>"$run_dir/sent.unsorted"
    sort -u "$run_dir/sent.unsorted" >"$run_dir/sent.list"
    offsite_files=$(wc -l <"$run_dir/sent.list")
    offsite_bytes=$(while IFS= read -r f; do wc -c <"$BACKUP_DIR/$f"; done <"$run_dir/sent.list" |
        awk '{ n += $1 } END { print n + 0 }')
    offsite_error=
    offsite_filters
    case $mode in
    copy)
        log "off-site: rclone copy (upload only: nothing on the remote is deleted or overwritten)"
        rclone_logged "uploading the artifacts" copy "$BACKUP_DIR" "$remote" --immutable --checksum \
            --filter-from "$run_dir/offsite.filter" "$@" || return 1
        # The run's files (reports, logs, the audit log) under a name of their
        # own per run, never over an earlier copy: what the remote holds of
        # the audit log is the history, not one file the next upload replaces.
        rclone_logged "uploading the reports and logs" copy "$BACKUP_DIR" \
            "$remote/runs/$(date -u +%Y%m%dT%H%M%SZ)-$$" --immutable \
            --filter '- .*' --filter '+ /*.json' --filter '+ /*.log' --filter '+ /*.log.*' \
            --filter '+ /*.html' --filter '- *' "$@" || log "warning: off-site: $offsite_error"
        offsite_error=
        ;;
    sync)
        log "off-site: rclone sync (a mirror: deletions are mirrored too)"
        rclone_logged "the sync" sync "$BACKUP_DIR" "$remote" --links --exclude '.*' \
            --exclude '.*/**' "$@" || return 1
        ;;
    *)
        offsite_error="BACKUP_OFFSITE_MODE=$mode is neither copy nor sync"
        return 1
        ;;
    esac
    [ "$offsite_files" -gt 0 ] || return 0
    # Every file this run sent, compared by hash with the remote; where the
    # remote has no hash in common with ours, by downloading it.
    rclone_logged "checking what was sent" check "$BACKUP_DIR" "$remote" --one-way \
        --files-from "$run_dir/sent.list"
    check_rc=$?
    if grep -q 'No common hash' "$run_dir/rclone.log"; then
        rclone_logged "checking what was sent (by download)" check "$BACKUP_DIR" "$remote" \
            --one-way --download --files-from "$run_dir/sent.list"
        check_rc=$?
    fi
    return $check_rc
}
offsite_json() { # status
    previous=$(sed -n 's/.*"last_success": *"\([^"]*\)".*/\1/p' "$BACKUP_DIR/offsite.json" 2>/dev/null)
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    last=$previous
    [ "$1" = success ] && last=$now
    {
        printf '{"status":"%s","timestamp":"%s","last_success":%s,' "$1" "$now" \
            "$([ -n "$last" ] && printf '"%s"' "$last" || printf null)"
        printf '"mode":"%s","files":%s,"bytes":%s,"duration_seconds":%s' \
            "$(json_escape "${BACKUP_OFFSITE_MODE:-copy}")" "${offsite_files:-0}" \
            "${offsite_bytes:-0}" "$(($(date +%s) - t0))"
        [ -z "$offsite_error" ] || printf ',"error":"%s"' "$(json_escape "$offsite_error")"
        printf '}\n'
    } >"$run_dir/offsite.json" && tmp=$(mktemp "$BACKUP_DIR/.offsite.json.XXXXXX") &&
        cat "$run_dir/offsite.json" >"$tmp" && mv -f "$tmp" "$BACKUP_DIR/offsite.json"
}
if [ -z "$failed" ] && [ -z "$run_problem" ] && [ -z "$interrupted" ] && [ -n "${BACKUP_OFFSITE_REMOTE:-}" ]; then
    if offsite; then
        log "off-site: $offsite_files file(s), $offsite_bytes bytes sent and checked"
        offsite_json success
    else
        log "off-site copy failed: ${offsite_error:-see above}; check BACKUP_OFFSITE_REMOTE and rclone's config"
        offsite_json failed
        run_problem=1
    fi
fi

# 6. The report, from every component's records (a later record wins).
for c in $selected; do cat "$run_dir/$c.json"; done >"$run_dir/records.jsonl"
duration=$(($(date +%s) - started))
# --notify: the messages go out from backup-report, right after the report
# (a target that cannot be reached is a warning there, never a failure).
set -- "$run_dir/records.jsonl" --type "$backup_type" --duration "$duration" --text --notify
# A selected component without a readable success record is failed.
for c in $selected; do set -- "$@" --component "$c"; done
[ -n "${BACKUP_PROMETHEUS_FILE:-}" ] && set -- "$@" --prometheus "$BACKUP_PROMETHEUS_FILE"
# Interrupted before it verified or drilled all it made: the report says so.
[ -z "$interrupted" ] || set -- "$@" --interrupted "$interrupted"
protected=1
run_logged "$run_dir/report.txt" backup-report "$@"
cat "$run_dir/report.txt" >&8
[ "$rc" -eq 0 ] || run_problem=1

# 7. The healthcheck ping and the exit status.
report=$BACKUP_DIR/backup_report.json
if [ -z "$failed" ] && [ -z "$run_problem" ] && [ -z "$interrupted" ]; then
    ping_health "" "$report"
    log "finished in ${duration}s: every selected component succeeded${week:+ (weekly/$week)}"
    exit 0
fi
ping_health /fail "$report"
if [ -n "$interrupted" ]; then
    log "interrupted by $interrupted after ${duration}s; failed:$failed"
else
    log "finished in ${duration}s with failures:${failed:- none}${run_problem:+ (and a prune, report or off-site step failed)}"
fi
exit 1
