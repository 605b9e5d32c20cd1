#!/bin/sh
# entrypoint.sh — the container's PID 1: checks the configuration, writes the
# crontab from BACKUP_SCHEDULE (or takes BACKUP_CRONTAB), then runs busybox
# crond, with backup.log shown on stdout (docker logs), and on SIGTERM stops a
# running backup cleanly before it stops crond.
#
# `entrypoint.sh run COMMAND [ARG…]` (a Kubernetes Job, `docker run … run
# backup.sh --component postgres`): the same checks, then COMMAND once as the
# backup user, a SIGTERM passed on to it, and its exit status returned.
#
# crond itself runs as root because busybox crond must: it switches to the
# crontab's user for every job and needs the privilege to do so (run as
# another user, it fails each job with "can't set groups"). The backups
# themselves run as BACKUP_USER (default: backup), never as root.
set -eu
umask 077

here=$(cd "$(dirname "$0")" && pwd)
BACKUP_SCHEDULE=${BACKUP_SCHEDULE:-0 2 * * *}
BACKUP_DIR=${BACKUP_DIR:-/data/backups}
export BACKUP_SCHEDULE BACKUP_DIR
user=${BACKUP_USER:-backup}
crontabs=${BACKUP_CRONTABS_DIR:-/etc/crontabs}
started_file=${BACKUP_STARTED_FILE:-/run/backup-kit.started}

say() {
    printf '%s entrypoint: %s\n' "$(date +%Y-%m-%dT%H:%M:%S%z | sed 's/\(..\)$/:\1/')" "$*" >&2
}
fail() {
    say "$*"
    exit 2
}

run_once=
if [ "${1:-}" = run ]; then
    shift
    [ $# -gt 0 ] || fail "run needs a command, e.g. run backup.sh --component postgres"
    run_once=1
fi

# A schedule crond cannot run would be a silent no-op: refuse it now. Sets $next
# to the next run, or to backup-report's reason without its log prefix.
check_schedule() { # schedule
    if next=$(backup-report --check-schedule --schedule "$1" 2>&1); then
        return 0
    fi
    next=$(printf '%s' "$next" | sed 's/^.* report: schedule check failed: //')
    return 1
}
# Every setting the runs read is checked now, in every mode: a bad one found
# at 02:00 would cost a night's report (backup-report --check-settings names
# each, with its variable).
if ! problems=$(backup-report --check-settings 2>/dev/null); then
    fail "$(printf '%s' "$problems" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
fi
if [ -n "$run_once" ]; then
    : # no schedule: a Job, or a person, decides when
elif [ -n "${BACKUP_CRONTAB:-}" ]; then
    [ -r "$BACKUP_CRONTAB" ] || fail "BACKUP_CRONTAB $BACKUP_CRONTAB cannot be read; check the mount"
    # A file saved on Windows: crond would take the CR into the command.
    if grep -q "$(printf '\r')" "$BACKUP_CRONTAB"; then
        fail "BACKUP_CRONTAB $BACKUP_CRONTAB has carriage returns (saved on Windows?); convert it to Unix line ends (dos2unix)"
    fi
    # Every job line's five time fields; comments and VAR=value lines pass.
    set -f
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in '' | '#'* | [A-Za-z_]*=*) continue ;; esac
        # shellcheck disable=SC2086 # the fields, split on purpose
        set -- $line
        [ $# -ge 6 ] || fail "BACKUP_CRONTAB line '$line' has no command after its five time fields"
        check_schedule "$1 $2 $3 $4 $5" || fail "BACKUP_CRONTAB line '$line': $next"
    done <"$BACKUP_CRONTAB"
    set +f
    next="the lines of $BACKUP_CRONTAB"
elif ! check_schedule "$BACKUP_SCHEDULE"; then
    fail "$next"
fi

# A notification target that cannot be parsed is said now, loudly, but does not
# stop the backups: a missed alert is bad, no backup at all is worse. Every
# run's log says it again.
if ! targets=$(backup-report --check-notify 2>&1); then
    say "warning: not every notification target is valid: $(printf '%s' "$targets" | sed -n 's/^.* report: notification check failed: //p'); fix BACKUP_NOTIFY_URLS"
elif [ -n "${BACKUP_NOTIFY_URLS:-}${BACKUP_NOTIFY_URLS_FILE:-}${BACKUP_NOTIFY_URL:-}" ]; then
    say "notifications (level ${BACKUP_NOTIFY_LEVEL:-error}) to: $(printf '%s' "$targets" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
fi

id "$user" >/dev/null 2>&1 || fail "user $user does not exist; set BACKUP_USER to the user backups run as"
[ "$(id -u)" = 0 ] || fail "start as root: busybox crond needs root to run each job as $user (the backups never run as root)"

# The backup tree belongs to the user the backups run as.
if [ ! -d "$BACKUP_DIR" ]; then
    mkdir -p "$BACKUP_DIR"
    chmod 700 "$BACKUP_DIR"
fi
if [ "$(stat -c %U "$BACKUP_DIR")" != "$user" ]; then
    say "$BACKUP_DIR belongs to $(stat -c %U "$BACKUP_DIR"), not $user: changing its owner (once)"
    chown -R "$user" "$BACKUP_DIR"
fi

# Run once: the command as the backup user (busybox su execs the shell, which
# execs the command: $child is the command itself), a SIGTERM passed on, its
# status returned.
if [ -n "$run_once" ]; then
    say "running as $user: $*"
    # backup.sh and its siblings by name, wherever the image keeps them.
    PATH=$here:$PATH
    export PATH
    set +e
    su -p -s /bin/sh -c 'exec "$0" "$@"' -- "$user" "$@" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null' TERM INT
    wait "$child"
    rc=$?
    # wait returns early when a trapped signal arrives: wait for the command.
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        rc=$?
    done
    say "$1 exited with status $rc"
    exit "$rc"
fi

# crond reads only crontabs that root owns; the file is named after the job's user.
mkdir -p "$crontabs"
tab=$crontabs/$user
{
    printf '# Written by entrypoint.sh at %s; times are in TZ=%s.\n' "$(date)" "${TZ:-UTC}"
    # Not the user's login shell, which may be nologin.
    echo "SHELL=/bin/sh"
    if [ -n "${BACKUP_CRONTAB:-}" ]; then
        cat "$BACKUP_CRONTAB"
    else
        echo "$BACKUP_SCHEDULE $here/backup.sh"
    fi
} >"$tab.tmp"
chmod 600 "$tab.tmp"
mv "$tab.tmp" "$tab"
say "backups run as $user on $next (TZ=${TZ:-UTC}); crontab $tab"

# For the health check: until the first run is due, no report is fine.
touch "$started_file"

# backup.log on stdout, so `docker logs` shows what the runs did.
touch "$BACKUP_DIR/backup.log"
chown "$user" "$BACKUP_DIR/backup.log"
tail -n 0 -F "$BACKUP_DIR/backup.log" &
tail_pid=$!

crond -f -l "${CROND_LOG_LEVEL:-8}" -L /dev/stderr -c "$crontabs" &
crond_pid=$!

# `docker stop` signals PID 1 only and kills the rest a few seconds later. A
# running backup is stopped first, so its tool removes its temporary file and
# the report says the run was interrupted.
stop() {
    kill -TERM "$crond_pid" 2>/dev/null || true
    pid=$(cat "$BACKUP_DIR/.backup.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && grep -q backup.sh "/proc/$pid/cmdline" 2>/dev/null; then
        say "stopping the running backup (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do
            sleep 0.2
            i=$((i + 1))
        done
        kill -0 "$pid" 2>/dev/null && say "the backup (pid $pid) did not stop within 8 s"
    fi
    # tail -F looks once a second: let it show the run's last lines.
    sleep 1
    kill "$tail_pid" 2>/dev/null || true
    say "stopped"
    exit 0
}
trap stop TERM INT
set +e
wait "$crond_pid"
rc=$?
say "crond exited with status $rc"
kill "$tail_pid" 2>/dev/null
exit "$rc"
