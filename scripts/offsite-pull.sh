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
in DIR or on the remote. Then, for example:

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
mkdir -p "$dir" || exit 1

printf 'offsite-pull: copying %s into %s\n' "$remote" "$dir" >&2
# Links come back as links (backup.sh uploads *_latest as .rclonelink).
if ! rclone copy "$remote" "$dir" --links --log-level NOTICE; then
    printf 'offsite-pull.sh: copying from %s failed; check the remote name and rclone'"'"'s config\n' "$remote" >&2
    exit 1
fi
printf 'offsite-pull: checking every artifact in %s\n' "$dir" >&2
backup-verify --all --backup-dir "$dir"
