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
# backup.sh and entrypoint.sh run under busybox as on Alpine; Debian's
# busybox-static is the build that has crond. backup.sh's hooks use curl,
# flock (util-linux) and rclone.
if ! /bin/busybox --list 2>/dev/null | grep -qx crond; then
    apt_install busybox-static
fi
# Debian's age: the encryption tests check interop with an implementation
# nobody here wrote.
for tool in age age-keygen; do
    command -v "$tool" >/dev/null 2>&1 || apt_install age
done
for tool in curl flock rclone; do
    command -v "$tool" >/dev/null 2>&1 || apt_install curl util-linux rclone
done

# A second real S3 server, Garage, for the same tests: it keeps keys as data,
# so it holds keys that s3s-fs (objects as files) cannot. Built once into a
# stable place, with only the sqlite store and at opt-level 1: what the tests
# need, in a fraction of a default build's time (see README). Built in the
# background while n8n and s3s-fs install, which mostly wait on the network.
GARAGE_HOME=${GARAGE_HOME:-/opt/backup-kit/garage}
garage_build=
if [ ! -x "$GARAGE_HOME/bin/garage" ]; then
    say "building Garage 2.5.0 into $GARAGE_HOME (several minutes, once, in the background)"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0 \
        cargo install --locked --quiet garage@2.5.0 --no-default-features \
        --features bundled-libs,sqlite --root "$GARAGE_HOME" &
    garage_build=$!
fi

# A real n8n for n8n-export's tests, installed once into a stable place outside
# the repository and reused. 2.8.4 is the newest n8n that runs on Node 20; its
# xlsx dependency points at a host npm cannot reach, hence the override.
N8N_HOME=${N8N_HOME:-/opt/backup-kit/n8n-2.8.4}
if [ ! -x "$N8N_HOME/node_modules/.bin/n8n" ]; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    say "installing n8n 2.8.4 into $N8N_HOME (a few minutes, once)"
    as_root mkdir -p "$N8N_HOME"
    as_root sh -c "cat > '$N8N_HOME/package.json'" <<'JSON'
{
  "name": "backup-kit-n8n",
  "private": true,
  "dependencies": { "n8n": "2.8.4" },
  "overrides": { "xlsx": "0.18.5" }
}
JSON
    (cd "$N8N_HOME" && as_root npm install --no-audit --no-fund --loglevel=error)
fi
export N8N_BIN="$N8N_HOME/node_modules/.bin/n8n"

# A real S3 server that checks signatures, for minio-snap's tests: s3s-fs,
# built once (~4 minutes) into a stable place outside the repository.
S3S_FS_HOME=${S3S_FS_HOME:-/opt/backup-kit/s3s-fs}
if [ ! -x "$S3S_FS_HOME/bin/s3s-fs" ]; then
    say "building s3s-fs 0.14.1 into $S3S_FS_HOME (a few minutes, once)"
    cargo install --locked --quiet s3s-fs@0.14.1 --features binary --root "$S3S_FS_HOME"
fi
export S3S_FS_BIN="$S3S_FS_HOME/bin/s3s-fs"

# A real SMTP server for the notification tests: aiosmtpd from PyPI, in a venv
# of its own; openssl makes the throwaway CA its STARTTLS certificate needs.
AIOSMTPD_HOME=${AIOSMTPD_HOME:-/opt/backup-kit/aiosmtpd}
if ! "$AIOSMTPD_HOME/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    say "installing aiosmtpd into $AIOSMTPD_HOME"
    as_root rm -rf "$AIOSMTPD_HOME"
    if ! as_root python3 -m venv "$AIOSMTPD_HOME" >/dev/null 2>&1; then
        apt_install python3-venv
        as_root python3 -m venv "$AIOSMTPD_HOME"
    fi
    as_root "$AIOSMTPD_HOME/bin/pip" install --quiet --disable-pip-version-check aiosmtpd
fi
export AIOSMTPD_PYTHON="$AIOSMTPD_HOME/bin/python"
command -v openssl >/dev/null 2>&1 || apt_install openssl
# kubernetes-validate (offline Kubernetes API schemas) and PyYAML, for deploy/.
KUBERNETES_VALIDATE_HOME=${KUBERNETES_VALIDATE_HOME:-/opt/backup-kit/kubernetes-validate}
if ! "$KUBERNETES_VALIDATE_HOME/bin/python" -c 'import kubernetes_validate, yaml' >/dev/null 2>&1; then
    say "installing kubernetes-validate into $KUBERNETES_VALIDATE_HOME"
    as_root rm -rf "$KUBERNETES_VALIDATE_HOME"
    if ! as_root python3 -m venv "$KUBERNETES_VALIDATE_HOME" >/dev/null 2>&1; then
        apt_install python3-venv
        as_root python3 -m venv "$KUBERNETES_VALIDATE_HOME"
    fi
    as_root "$KUBERNETES_VALIDATE_HOME/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi
export KUBERNETES_VALIDATE_HOME
# Headless Chromium renders backup_report.html; promtool checks and unit-tests
# the alerting rules (Debian's prometheus package ships it).
command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v promtool >/dev/null 2>&1 || apt_install prometheus

if [ -n "$garage_build" ]; then
    say "waiting for the Garage build"
    wait "$garage_build" || { say "building Garage failed; see above"; exit 1; }
fi
export GARAGE_BIN="$GARAGE_HOME/bin/garage"

# `scripts/test.sh --install-only` (scripts/demo.sh uses it) stops here.
if [ "${1:-}" = --install-only ]; then
    exit 0
fi

# Tests that need root (a tmpfs to fill, crond) are #[ignore]d, so that without
# root they show as ignored; as root (CI) they run, and none may be ignored.
test_args=
if [ "$(id -u)" = 0 ]; then
    test_args=--include-ignored
else
    say "not root: the root-only tests are left out (shown as ignored)"
fi

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test"
# shellcheck disable=SC2086
cargo test --workspace --locked -- $test_args
# The container's static binaries, and the system tests once more against them.
scripts/build-static.sh --test
say "all checks passed"
