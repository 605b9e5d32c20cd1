# Sourced by the PostgreSQL benchmarks: a throwaway cluster in "$work/pg" on a
# free loopback port (as nobody under root: initdb refuses root), stopped when
# the benchmark exits, with the libpq and POSTGRES_* variables pointing at it
# and an empty database "bench". Needs $work set and $work/out wanted.
pg_bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k5 -n | tail -n 1)}
export PATH="$pg_bindir:$PATH"

rm -rf "$work"; mkdir -p "$work/pg" "$work/out"; chmod 0755 "$work"
as_service() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
printf bench-secret-pw > "$work/pg/pw"
[ "$(id -u)" = 0 ] && chown -R nobody "$work/pg"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_service initdb -D "$work/pg/data" -U bench --auth=scram-sha-256 --pwfile="$work/pg/pw" >/dev/null
as_service pg_ctl -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $port -c listen_addresses=127.0.0.1 -k $work/pg" start >/dev/null
trap 'as_service pg_ctl -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true' EXIT INT TERM

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=bench PGPASSWORD=bench-secret-pw PGDATABASE=bench
export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$port POSTGRES_USER=bench POSTGRES_PASSWORD=bench-secret-pw POSTGRES_DB=bench
createdb bench
