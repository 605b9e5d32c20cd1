#!/bin/sh
# The quickstart: builds the tools, starts throwaway local services, runs a real
# backup, verifies it, restores it into a scratch target and says where the
# files are. Nothing outside $DEMO_DIR (default /tmp/backup-kit-demo) is touched;
# the services are stopped when the script ends.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
DEMO_DIR=${DEMO_DIR:-/tmp/backup-kit-demo}

say() { printf '\n==> %s\n' "$*"; }

say "building the tools (release)"
cargo build --release --locked --quiet
bin="$repo/target/release"

pg_bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -n 1)}
if [ ! -x "$pg_bindir/initdb" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing PostgreSQL (server binaries for the throwaway cluster)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k5 -n | tail -n 1)
fi
if [ ! -x "$pg_bindir/initdb" ]; then
    echo "PostgreSQL server binaries not found (set PG_BINDIR, or apt-get install postgresql)" >&2
    exit 1
fi

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/services"
chmod 0755 "$DEMO_DIR"

# initdb refuses to run as root: under root the demo server runs as nobody.
as_service() {
    if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}
pgdata="$DEMO_DIR/services/pg"
mkdir -p "$pgdata"
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s' "$password" > "$DEMO_DIR/services/pg.password"
chmod 0600 "$DEMO_DIR/services/pg.password"
if [ "$(id -u)" = 0 ]; then chown -R nobody "$DEMO_DIR/services"; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

say "starting a throwaway PostgreSQL on 127.0.0.1:$port"
as_service "$pg_bindir/initdb" -D "$pgdata/data" -U arasul --auth=scram-sha-256 \
    --pwfile="$DEMO_DIR/services/pg.password" -E UTF8 --locale=C.UTF-8 >/dev/null
as_service "$pg_bindir/pg_ctl" -D "$pgdata/data" -l "$pgdata/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $pgdata" start >/dev/null
stop_services() { as_service "$pg_bindir/pg_ctl" -D "$pgdata/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop_services EXIT INT TERM

export PATH="$pg_bindir:$PATH"
export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT="$port" POSTGRES_USER=arasul POSTGRES_DB=arasul_db
export POSTGRES_PASSWORD_FILE="$DEMO_DIR/services/pg.password"
export BACKUP_DIR="$DEMO_DIR/backups"
psql_demo() { PGPASSWORD="$password" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U arasul "$@"; }

say "creating demo data in arasul_db"
psql_demo -d postgres -c "CREATE DATABASE arasul_db"
psql_demo -d arasul_db <<'SQL'
CREATE SCHEMA app;
CREATE TABLE app.documents (id serial PRIMARY KEY, title text, meta jsonb, body bytea);
INSERT INTO app.documents (title, meta, body)
SELECT 'Dokument Nr. ' || g || ' – grüße', jsonb_build_object('n', g, 'tags', jsonb_build_array('a', 'ü')),
       decode(md5(g::text), 'hex')
FROM generate_series(1, 50000) g;
CREATE VIEW app.recent AS SELECT * FROM app.documents WHERE id > 49000;
SQL

say "backup: pg-dumpwrap backup"
"$bin/pg-dumpwrap" backup

say "verify: gzip -t and sha256sum -c, as the product description does, then backup-verify"
(cd "$BACKUP_DIR/postgres" && gzip -t arasul_db_latest.sql.gz && sha256sum -c ./*.sha256)
"$bin/backup-verify"

say "report: backup-report"
"$bin/pg-dumpwrap" backup | "$bin/backup-report" --text

say "restore into a scratch database: pg-dumpwrap restore --create"
POSTGRES_DB=arasul_db_restored "$bin/pg-dumpwrap" restore --create "$BACKUP_DIR/postgres/arasul_db_latest.sql.gz"
original=$(psql_demo -d arasul_db -At -c "SELECT count(*), md5(string_agg(title || meta::text || encode(body, 'hex'), ',' ORDER BY id)) FROM app.documents")
restored=$(psql_demo -d arasul_db_restored -At -c "SELECT count(*), md5(string_agg(title || meta::text || encode(body, 'hex'), ',' ORDER BY id)) FROM app.documents")
if [ "$original" != "$restored" ]; then
    echo "restored data differs: $original vs $restored" >&2
    exit 1
fi
echo "restored table matches the original (rows|md5: $restored)"

say "the backup tree: $BACKUP_DIR"
ls -la "$BACKUP_DIR"/*
echo
echo "Demo done. Backups are in $BACKUP_DIR; the services were stopped."
