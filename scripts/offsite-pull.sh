#!/bin/sh
# offsite-pull.sh REMOTE DIR — bring a backup tree back from the off-site
# remote (after a disaster: the host and its tree are gone) and check every
# artifact in it. Then restore.sh with BACKUP_DIR=DIR restores the stack.
# Runs under busybox sh.
set -u

usage() {
    cat <<'EOF'
Usage: offsite-pull.sh [--before TIME] REMOTE DIR

Copies the backup tree from the rclone remote REMOTE (what backup.sh's
off-site step uploads to: BACKUP_OFFSITE_REMOTE) into DIR (created, 0700),
then runs `backup-verify --all` on it: every artifact decoded, hashed and
checked against its sidecar, every MinIO chain complete. Nothing is deleted
in DIR or on the remote.

What comes from the remote is data, never a link: whoever could upload to the
remote (the backup host, or an attacker on it) could otherwise plant a link
and have the pull write through it outside DIR. Links on the remote
(*.rclonelink) are not copied; DIR, and every folder in it, must not be a
link. The *_latest links are made afresh here (`backup-prune relink`: each
series' newest backup with its sidecar, never one dated in the future).

  --before TIME   only what the remote received before TIME (its own
                  modification times, never what the uploader claimed):
                  a restore from before a compromise of the backup host.
                  TIME: YYYY-MM-DD HH:MM[:SS] (local time) or
                  YYYY-MM-DDTHH:MM:SSZ (UTC)

Then, for example:

  BACKUP_DIR=DIR restore.sh --from latest

Exit status: 0 when every artifact checked out, 1 otherwise, 2 on a usage error.
EOF
}

case ${1:-} in -h | --help)
    usage
    exit 0
    ;;
esac
before=
before_given=
case ${1:-} in
--before | --before=*) before_given=1 ;;
esac
case ${1:-} in
--before)
    [ $# -ge 2 ] || {
        printf 'offsite-pull.sh: --before needs a TIME (see --help)\n' >&2
        exit 2
    }
    before=$2
    shift 2
    ;;
--before=*)
    before=${1#--before=}
    shift
    ;;
esac
if [ $# -ne 2 ]; then
    printf 'offsite-pull.sh: give REMOTE and DIR (see --help)\n' >&2
    exit 2
fi
remote=$1
dir=$2
umask 077
# --before: the age that TIME is now, for rclone's --min-age, judged by the
# server's own times (--use-server-modtime): an uploader can set an object's
# claimed modification time, not when the server received it.
age_filter=
if [ -n "$before_given" ] && [ -z "$before" ]; then
    # An unset variable must not quietly pull everything.
    printf 'offsite-pull.sh: --before is empty; give a TIME (see --help)\n' >&2
    exit 2
fi
if [ -n "$before" ]; then
    case $before in
    *Z) epoch=$(TZ=UTC date -d "$(printf '%s' "${before%Z}" | tr T ' ')" +%s 2>/dev/null) ;;
    *) epoch=$(date -d "$(printf '%s' "$before" | tr T ' ')" +%s 2>/dev/null) ;;
    esac
    if [ -z "$epoch" ]; then
        printf 'offsite-pull.sh: --before %s is not a time (YYYY-MM-DD HH:MM[:SS], or YYYY-MM-DDTHH:MM:SSZ for UTC)\n' "$before" >&2
        exit 2
    fi
    age=$(($(date +%s) - epoch))
    if [ "$age" -le 0 ]; then
        printf 'offsite-pull.sh: --before %s is not in the past\n' "$before" >&2
        exit 2
    fi
    age_filter="--use-server-modtime --min-age ${age}s"
fi
# A link anywhere on the way in would lead the copy out of DIR.
links_in() { # dir: every link to a folder in it, and DIR itself if it is one
    [ -L "$1" ] && printf '%s\n' "$1"
    [ -d "$1" ] || return 0
    find "$1" -mindepth 1 -type l | while IFS= read -r l; do
        [ -d "$l" ] && printf '%s\n' "$l"
    done
}
refuse_links() { # when
    found=$(links_in "$dir")
    [ -z "$found" ] && return 0
    printf 'offsite-pull.sh: %s: %s is a link to a folder; a pulled tree holds no links to folders (remove it, or pull into an empty DIR)\n' \
        "$1" "$(printf '%s' "$found" | head -n 1)" >&2
    exit 1
}
refuse_links "before the copy"
mkdir -p -- "$dir" || exit 1

printf 'offsite-pull: copying %s into %s%s\n' "$remote" "$dir" "${before:+ (only what it received before $before)}" >&2
# No --links: a link on the remote (*.rclonelink) is never made a link here,
# and is not copied at all.
# shellcheck disable=SC2086 # the flags of --before, split on purpose
if ! rclone copy "$remote" "$dir" --exclude '*.rclonelink' $age_filter --log-level NOTICE; then
    printf 'offsite-pull.sh: copying from %s failed; check the remote name and rclone'"'"'s config\n' "$remote" >&2
    exit 1
fi
refuse_links "after the copy"
# The *_latest links, made here from what was pulled: each series' newest
# backup with its sidecar (never one dated in the future).
if ! backup-prune relink --backup-dir "$dir" >/dev/null; then
    printf 'offsite-pull.sh: the *_latest links could not be made in %s (see above)\n' "$dir" >&2
    exit 1
fi
printf 'offsite-pull: checking every artifact in %s\n' "$dir" >&2
backup-verify --all --backup-dir "$dir"
