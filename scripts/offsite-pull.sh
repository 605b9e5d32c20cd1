#!/bin/sh
# offsite-pull.sh REMOTE DIR — bring a backup tree back from the off-site
# remote (after a disaster: the host and its tree are gone) and check every
# artifact in it. Then restore.sh with BACKUP_DIR=DIR restores the stack.
# Runs under busybox sh.
set -u

usage() {
    cat <<'EOF'
Usage: offsite-pull.sh REMOTE DIR

Copies the backup tree from the rclone remote REMOTE (what backup.sh's
off-site step uploads to: BACKUP_OFFSITE_REMOTE) into DIR (created, 0700),
then runs `backup-verify --all` on it: every artifact decoded, hashed and
checked against its sidecar, every MinIO chain complete. Nothing is deleted
in DIR or on the remote.

What comes from the remote is data, never a link: whoever could upload to the
remote (the backup host, or an attacker on it) could otherwise plant a link
and have the pull write through it outside DIR. Links on the remote
(*.rclonelink) are not copied; DIR, and every folder in it, must not be a
link. The *_latest links are not needed: `restore.sh --from latest` takes
each series' newest checked backup. Then, for example:

  BACKUP_DIR=DIR restore.sh --from latest

Exit status: 0 when every artifact checked out, 1 otherwise, 2 on a usage error.
EOF
}

case ${1:-} in -h | --help)
    usage
    exit 0
    ;;
esac
if [ $# -ne 2 ]; then
    printf 'offsite-pull.sh: give REMOTE and DIR (see --help)\n' >&2
    exit 2
fi
remote=$1
dir=$2
umask 077
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

printf 'offsite-pull: copying %s into %s\n' "$remote" "$dir" >&2
# No --links: a link on the remote (*.rclonelink) is never made a link here,
# and is not copied at all.
if ! rclone copy "$remote" "$dir" --exclude '*.rclonelink' --log-level NOTICE; then
    printf 'offsite-pull.sh: copying from %s failed; check the remote name and rclone'"'"'s config\n' "$remote" >&2
    exit 1
fi
refuse_links "after the copy"
printf 'offsite-pull: checking every artifact in %s\n' "$dir" >&2
backup-verify --all --backup-dir "$dir"
