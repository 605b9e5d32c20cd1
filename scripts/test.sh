#!/bin/sh
# The test command (README.md, .ci/run): installs what the tests need when it is
# missing, then runs the formatter check, clippy and every test.
#
# Services are not started here: each test starts its own throwaway ones (a
# PostgreSQL cluster per test) and removes them afterwards.
set -eu
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "cannot install $* (no apt-get); install it and run again"
        exit 1
    fi
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    say "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# PostgreSQL server binaries (initdb, pg_ctl) and client (pg_dump, psql).
pg_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [ -x "$d/initdb" ]; then echo "$d"; return; fi
    done
}
if [ -z "$(pg_bindir)" ] || ! command -v psql >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
fi
for tool in gzip sha256sum mount; do
    command -v "$tool" >/dev/null 2>&1 || apt_install coreutils gzip mount
done

# Under root, the disk-full tests mount a small tmpfs; they must run, not skip.
if [ "$(id -u)" = 0 ]; then
    export BACKUP_KIT_REQUIRE_ROOT_TESTS=1
fi

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test"
cargo test --workspace --locked
say "all checks passed"
