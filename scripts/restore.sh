#!/bin/sh
# restore.sh — restore the whole stack (or the components named) from one
# point of the backup tree, in the order the services need: PostgreSQL's
# globals, every database, every MinIO bucket (whole chains), the Qdrant
# collections with their aliases, n8n's credentials, then its workflows.
# Every file it will use is checked (sidecars, content, chains) by
# `backup-verify --plan` before any service is touched. Thin on purpose: the
# choice of files and every restore live in the Rust tools; this only shows
# the plan, asks, and sequences them. Runs under busybox sh.
set -u

usage() {
    cat <<'EOF'
Usage: restore.sh [--from latest | --from weekly/YYYY_WNN | --at YYYYMMDD_HHMMSS]
                  [--component NAME]... [--allow-missing] [--yes]

Restores from $BACKUP_DIR (default /data/backups) into the services the
usual variables name (POSTGRES_*, MINIO_*, QDRANT_*, N8N_*), from one point:

  --from latest            each series' newest backup (the default)
  --from weekly/YYYY_WNN   what that weekly snapshot holds
  --at YYYYMMDD_HHMMSS     each series' newest backup made at or before then
  --component NAME         postgres, minio, qdrant or n8n; repeatable
                           (default: every component the tree holds)
  --allow-missing          restore what the point has although it lacks a
                           series or component the tree holds, or the plan
                           skips a file (no sidecar, a link, dated in the
                           future); without it any such gap stops the restore
  --yes                    do not ask (scripts); without it the plan is shown
                           and a terminal must answer "yes"
  -h, --help               this text

Databases are created where missing (a fresh cluster); buckets too. Qdrant
aliases are pointed at the restored collections. n8n credentials need N8N_CLI
and N8N_ENCRYPTION_KEY (or _FILE): the key of the n8n that made the backup.
Every restore appends a line to $BACKUP_DIR/audit.log (or BACKUP_AUDIT_LOG),
and so does this script for the whole run.

Exit status: 0 when every step succeeded, 1 when a check or a step failed (a
failed component's later steps are skipped; the other components go on), 2 on
a usage error or an unanswered question.
EOF
}

die_usage() {
    printf 'restore.sh: %s (see --help)\n' "$1" >&2
    exit 2
}

point=latest
components=
yes=
allow_missing=
while [ $# -gt 0 ]; do
    case $1 in
    --from)
        [ $# -ge 2 ] || die_usage "--from needs latest or weekly/YYYY_WNN"
        point=$2
        shift
        ;;
    --from=*) point=${1#--from=} ;;
    --at)
        [ $# -ge 2 ] || die_usage "--at needs YYYYMMDD_HHMMSS"
        point=$2
        shift
        ;;
    --at=*) point=${1#--at=} ;;
    --component)
        [ $# -ge 2 ] || die_usage "--component needs a name"
        components="$components $2"
        shift
        ;;
    --component=*) components="$components ${1#--component=}" ;;
    --yes | -y) yes=1 ;;
    --allow-missing) allow_missing=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die_usage "unknown argument: $1" ;;
    esac
    shift
done
for c in $components; do
    case $c in
    postgres | minio | qdrant | n8n) ;;
    *) die_usage "unknown component '$c' (postgres, minio, qdrant, n8n)" ;;
    esac
done

BACKUP_DIR=${BACKUP_DIR:-/data/backups}
export BACKUP_DIR
umask 077

stamp() {
    date +%Y-%m-%dT%H:%M:%S%z | sed 's/\(..\)$/:\1/'
}
log() {
    printf '%s restore: %s\n' "$(stamp)" "$*" >&2
}
json_escape() {
    printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'
}

# The audit log: the tools write a line per restore; this script one for the
# run. A run that could not be recorded does not start.
audit=${BACKUP_AUDIT_LOG:-$BACKUP_DIR/audit.log}
if [ -L "$audit" ] || ! { : >>"$audit"; } 2>/dev/null; then
    printf 'restore.sh: cannot append to the audit log %s; every restore is recorded there, so none starts without it (check BACKUP_DIR, or set BACKUP_AUDIT_LOG)\n' "$audit" >&2
    exit 1
fi
export BACKUP_AUDIT_LOG="$audit"

work=$(mktemp -d) || exit 1
child=
interrupted=
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
on_signal() {
    interrupted=$1
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT
trap 'on_signal SIGHUP' HUP

started=$(date +%s)
audit_line() { # outcome detail
    printf '{"time":"%s","user":"%s","uid":%s,"host":"%s","tool":"restore.sh","args":["%s"],"target":"the stack","outcome":"%s","detail":"%s","duration_seconds":%s}\n' \
        "$(stamp)" "$(json_escape "$(id -un 2>/dev/null || echo "uid $(id -u)")")" "$(id -u)" \
        "$(json_escape "$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)")" \
        "$(json_escape "$point")" "$1" "$(json_escape "$2")" "$(($(date +%s) - started))" >>"$audit"
}
audit_run() { # outcome detail
    audit_line "$@" || log "warning: the run's audit line could not be written to $audit"
}

# 1. The plan, every file of it checked before anything is touched. Its
# fields come NUL-terminated: no file name can forge a step.
set -- --plan "$point" --null
[ -z "$allow_missing" ] || set -- "$@" --allow-missing
for c in $components; do set -- "$@" --component "$c"; done
if ! backup-verify "$@" >"$work/plan" 2>"$work/checks"; then
    cat "$work/checks" >&2
    log "the restore plan from $point could not be made, lacks something or its files failed their checks; no service was touched"
    audit_run failed "plan from $point failed its checks"
    exit 1
fi
# What the point lacks, allowed by --allow-missing, is still said.
grep ' plan: ' "$work/checks" >&2
read_step() { # into c step series path made
    IFS= read -r -d '' c && IFS= read -r -d '' step && IFS= read -r -d '' series &&
        IFS= read -r -d '' path && IFS= read -r -d '' made
}

target_of() { # component step series
    case $1/$2 in
    postgres/globals) printf '%s' "the cluster's roles on ${POSTGRES_HOST:-postgres-db}:${POSTGRES_PORT:-5432}" ;;
    postgres/database) printf 'database %s on %s (created if missing)' "$3" "${POSTGRES_HOST:-postgres-db}:${POSTGRES_PORT:-5432}" ;;
    minio/bucket) printf 'bucket %s at %s (created if missing)' "$3" "${MINIO_ENDPOINT:-http://${MINIO_HOST:-minio}:9000}" ;;
    qdrant/collections) printf '%s' "its collections and aliases at ${QDRANT_URL:-http://qdrant:6333}" ;;
    n8n/credentials) printf '%s' "n8n's credentials (ids kept; N8N_ENCRYPTION_KEY checked first)" ;;
    n8n/workflows) printf '%s' "n8n's workflows (ids kept with N8N_CLI)" ;;
    esac
}

printf 'Restore plan: %s from %s (every file checked)\n' "$point" "$BACKUP_DIR" >&2
n=0
while read_step; do
    n=$((n + 1))
    printf '  %2d. %-8s %-11s %s (made %s)\n        -> %s\n' "$n" "$c" "$step" "${path##*/}" \
        "$made" "$(target_of "$c" "$step" "$series")" >&2
done <"$work/plan"

# 2. Confirmation: a terminal answers, a script says --yes.
if [ -z "$yes" ]; then
    if [ -t 0 ]; then
        printf 'This overwrites what these services hold now. Type yes to restore: ' >&2
        read -r answer || answer=
        if [ "$answer" != yes ]; then
            log "not confirmed; nothing was restored"
            exit 1
        fi
    else
        printf 'restore.sh: not on a terminal, so nobody can confirm the plan; pass --yes to restore\n' >&2
        exit 2
    fi
fi

# 3. The steps, each with its tool. A failure skips the rest of its component.
# The run is recorded as started before the first step touches a service.
if ! audit_line started "$n step(s) planned" 2>/dev/null; then
    printf 'restore.sh: cannot write to the audit log %s (a full disk?); every restore is recorded there before it starts, so none starts without it\n' "$audit" >&2
    exit 1
fi

run_step() { # out command...
    out=$1
    shift
    "$@" >"$out" 2>&2 </dev/null &
    child=$!
    [ -z "$interrupted" ] || kill -TERM "$child" 2>/dev/null
    wait "$child"
    rc=$?
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        rc=$?
    done
    child=
}

failed=
done_steps=
summary=
i=0
while read_step; do
    i=$((i + 1))
    case " $failed " in *" $c "*)
        log "$c: skipping $step $series (an earlier $c step failed)"
        continue
        ;;
    esac
    if [ -n "$interrupted" ]; then
        failed="$failed $c"
        continue
    fi
    t0=$(date +%s)
    log "step $i: $c $step $series from ${path##*/}"
    case $c/$step in
    # Names go as --flag=value and paths after `--`: a database named `-rf`
    # is a name, never an option.
    postgres/globals) run_step "$work/$i.out" pg-dumpwrap restore --globals --db=postgres -- "$path" ;;
    postgres/database) run_step "$work/$i.out" pg-dumpwrap restore --create-if-missing --db="$series" -- "$path" ;;
    minio/bucket) run_step "$work/$i.out" minio-snap restore --bucket="$series" -- "$path" ;;
    qdrant/collections) run_step "$work/$i.out" qdrant-snap restore -- "$path" ;;
    n8n/credentials) run_step "$work/$i.out" n8n-export restore --credentials -- "$path" ;;
    n8n/workflows) run_step "$work/$i.out" n8n-export restore -- "$path" ;;
    *) rc=1 ;;
    esac
    if [ "$rc" -eq 0 ]; then
        done_steps="$done_steps $c"
        summary="$summary$c $step $series: restored from ${path##*/} in $(($(date +%s) - t0))s
"
    else
        failed="$failed $c"
        summary="$summary$c $step $series: FAILED (status $rc; see the lines above)
"
    fi
done <"$work/plan"

# 4. One line per component, then the exit status.
printf '%s' "$summary"
for c in postgres minio qdrant n8n; do
    steps=$(printf '%s' "$summary" | grep -c "^$c ")
    [ "$steps" -gt 0 ] || continue
    case " $failed " in
    *" $c "*) printf '%-8s FAILED (%s step(s) run; see above)\n' "$c" "$steps" ;;
    *) printf '%-8s ok (%s step(s))\n' "$c" "$steps" ;;
    esac
done
if [ -n "$interrupted" ]; then
    log "interrupted by $interrupted; failed or not run:$failed"
    audit_run failed "interrupted by $interrupted"
    exit 1
fi
if [ -n "$failed" ]; then
    log "finished with failures:$failed"
    audit_run failed "failed:$failed"
    exit 1
fi
log "finished in $(($(date +%s) - started))s: every step succeeded"
audit_run success "$i step(s)"
exit 0
