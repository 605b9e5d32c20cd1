#!/bin/sh
# build-static.sh — static (musl) binaries of every tool, as the container ships
# them, into target/x86_64-unknown-linux-musl/release. Each one is checked to be
# static and to start. With --test, the system tests (backup.sh, crond, the
# whole stack) then run against these binaries instead of the debug build.
set -eu
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
out=$PWD/target/$target/release
tools="pg-dumpwrap minio-snap qdrant-snap n8n-export backup-prune backup-verify backup-report"

say() { printf '==> %s\n' "$*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    say "adding the $target target"
    rustup target add "$target"
fi
host=$(rustc -vV | sed -n 's/^host: //p')
if [ "$host" != "$target" ]; then
    # ring compiles C for the target: musl-gcc (Debian's musl-tools) does that.
    if ! command -v musl-gcc >/dev/null 2>&1; then
        say "installing musl-tools"
        if [ "$(id -u)" = 0 ]; then s=; else s=sudo; fi
        $s apt-get update -qq
        $s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
    fi
    export CC_x86_64_unknown_linux_musl=musl-gcc
fi

packages=
for t in $tools; do packages="$packages -p $t"; done
say "cargo build --release --target $target"
# shellcheck disable=SC2086
cargo build --release --locked --target "$target" $packages

for t in $tools; do
    bin=$out/$t
    # A dynamically linked program names its loader in a PT_INTERP header.
    if readelf -l "$bin" | grep -q 'INTERP'; then
        echo "$bin is not static" >&2
        exit 1
    fi
    "$bin" --version >/dev/null
    printf '%s: static, %s bytes\n' "$t" "$(wc -c <"$bin")"
done

if [ "${1:-}" = --test ]; then
    say "system tests against the static binaries"
    # As root, the root-only tests (#[ignore]d otherwise) run too.
    if [ "$(id -u)" = 0 ]; then set -- --include-ignored; else set --; fi
    BACKUP_KIT_BIN_DIR=$out cargo test --locked -p system-tests -- "$@"
fi
