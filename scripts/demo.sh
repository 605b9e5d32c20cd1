#!/bin/sh
# The quickstart: the whole cycle on throwaway local services. Builds the tools,
# starts PostgreSQL, an S3 server, a Qdrant stand-in and n8n with sample data,
# then runs backup.sh full, incremental (after changes) and --weekly, verifies
# the tree, restores every component from the weekly snapshot into fresh
# targets and compares them with the originals, and finally runs once with
# MinIO unreachable, and once encrypted to a throwaway age key (restored with
# its identity). Files stay in $DEMO_DIR (default /tmp/backup-kit-demo);
# the services are stopped when the script ends. DEMO_S3=garage runs the S3
# part against Garage instead of s3s-fs.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
DEMO_DIR=${DEMO_DIR:-/tmp/backup-kit-demo}

say() { printf '\n==> %s\n' "$*"; }

say "installing what the services need, if missing (scripts/test.sh --install-only)"
scripts/test.sh --install-only
say "building the tools and the demo services (release)"
cargo build --release --locked --quiet --workspace --bins
bin=$repo/target/release

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
chmod 0755 "$DEMO_DIR"
stack=$DEMO_DIR/stack

say "starting throwaway services (demo-stack)"
mkfifo "$DEMO_DIR/stack.ctl"
"$bin/demo-stack" "$stack" <"$DEMO_DIR/stack.ctl" &
stack_pid=$!
# The services live while this end of the pipe is open.
exec 7>"$DEMO_DIR/stack.ctl"
stop_services() {
    exec 7>&-
    wait "$stack_pid" 2>/dev/null || true
}
trap stop_services EXIT
trap 'exit 130' INT TERM
while [ ! -f "$stack/stack.env" ]; do
    kill -0 "$stack_pid" 2>/dev/null || { echo "demo-stack failed to start the services" >&2; exit 1; }
    sleep 1
done
. "$stack/stack.env"
export BACKUP_DIR="$DEMO_DIR/backups" TZ="${TZ:-Europe/Berlin}" PATH="$bin:$PATH"

# Helpers that read the services directly; secrets travel in env and files, not argv.
pg() { PGPASSWORD=$(cat "$POSTGRES_PASSWORD_FILE") psql -X -q -At -v ON_ERROR_STOP=1 \
    -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" "$@"; }
pg_digest() { pg -d "$1" -c "SELECT count(*), md5(string_agg(title || meta::text || encode(body, 'hex'), ',' ORDER BY id)) FROM app.documents"; }
export RCLONE_CONFIG_DEMO_TYPE=s3 RCLONE_CONFIG_DEMO_PROVIDER=Other RCLONE_CONFIG_DEMO_ENDPOINT="$MINIO_ENDPOINT" \
    RCLONE_CONFIG_DEMO_ACCESS_KEY_ID="$MINIO_ROOT_USER" RCLONE_CONFIG_DEMO_REGION="$MINIO_REGION"
RCLONE_CONFIG_DEMO_SECRET_ACCESS_KEY=$(cat "$MINIO_ROOT_PASSWORD_FILE")
export RCLONE_CONFIG_DEMO_SECRET_ACCESS_KEY
# rclone's S3 client refuses a custom CA bundle with its own transport; plain http here.
s3() { env -u AWS_CA_BUNDLE rclone "$@"; }
printf 'api-key: %s\n' "$(cat "$QDRANT_API_KEY_FILE")" >"$stack/secrets/qdrant.header"
printf 'X-N8N-API-KEY: %s\n' "$(cat "$N8N_API_KEY_FILE")" >"$stack/secrets/n8n.header"
qdrant() { curl -fsS -H @"$stack/secrets/qdrant.header" "$@"; }
points() { qdrant "$QDRANT_URL/collections/$1" | sed -n 's/.*"points_count":\([0-9]*\).*/\1/p'; }
n8n_api() { curl -fsS -H @"$stack/secrets/n8n.header" "$@"; }
workflows() { # "id<TAB>name" per workflow, sorted by name
    n8n_api "$N8N_URL/api/v1/workflows?limit=250" |
        python3 -c 'import json,sys; [print(w["id"]+"\t"+w["name"]) for w in sorted(json.load(sys.stdin)["data"], key=lambda w: w["name"])]'
}

say "1. backup.sh --type full"
scripts/backup.sh --type full

say "changes: 1,000 rows in PostgreSQL, two objects in the bucket, one deleted"
pg -d arasul_db -c "INSERT INTO app.documents (title, meta) SELECT 'neu ' || g, '{}' FROM generate_series(1, 1000) g"
printf 'added after the full backup\n' >"$DEMO_DIR/new.txt"
s3 copyto "$DEMO_DIR/new.txt" demo:documents/new/added.txt
s3 copyto "$DEMO_DIR/new.txt" demo:documents/reports/00/report-0000.txt
s3 deletefile demo:documents/reports/01/report-0001.txt

say "2. backup.sh --type incremental (MinIO archives only what changed)"
scripts/backup.sh --type incremental
ls -l "$BACKUP_DIR/minio"

say "3. backup.sh --weekly"
scripts/backup.sh --type incremental --weekly
week=$(ls "$BACKUP_DIR/weekly" | tail -n 1)
ls -lR "$BACKUP_DIR/weekly/$week"

say "4. backup-verify --all, then the restore drill (scratch targets, compared, removed)"
backup-verify --all
backup-verify --restore-test --drill-from "weekly/$week"
echo "drill cost per component (seconds):"
python3 - "$BACKUP_DIR/restore_test.json" <<'PY'
import json, sys
for c, v in json.load(open(sys.argv[1]))["components"].items():
    print(f"  {c:<9} {v['duration_seconds']:>6} s  {v['status']}")
PY

say "5. restore every component from weekly/$week into fresh targets"
w=$BACKUP_DIR/weekly/$week
# The cluster's roles first (here they exist already: updated, not an error), then the database.
pg-dumpwrap restore --globals "$(ls "$w"/postgres/globals_*.sql.gz)"
POSTGRES_DB=arasul_db_restored pg-dumpwrap restore --create "$(ls "$w"/postgres/arasul_db_*.sql.gz)"
original=$(pg_digest arasul_db)
restored=$(pg_digest arasul_db_restored)
[ "$original" = "$restored" ] || { echo "PostgreSQL: restored data differs: $original vs $restored" >&2; exit 1; }
echo "PostgreSQL: arasul_db_restored matches arasul_db (rows|md5: $restored)"

MINIO_BUCKET=restored minio-snap restore "$(ls "$w"/minio/*.tar.gz | sort | tail -n 1)"
s3 check --download demo:documents demo:restored
echo "MinIO: bucket restored matches documents, byte for byte"

before="$(points documents) $(points memory)"
qdrant -X DELETE "$QDRANT_URL/collections/documents" >/dev/null
qdrant -X DELETE "$QDRANT_URL/collections/memory" >/dev/null
qdrant-snap restore "$(ls "$w"/qdrant/*.tar.gz)"
after="$(points documents) $(points memory)"
[ "$before" = "$after" ] || { echo "Qdrant: points differ: $before vs $after" >&2; exit 1; }
echo "Qdrant: both collections back with their points ($after)"

names_before=$(workflows | cut -f2)
for id in $(workflows | cut -f1); do n8n_api -X DELETE "$N8N_URL/api/v1/workflows/$id" >/dev/null; done
[ -z "$(workflows)" ] || { echo "n8n: workflows left after deleting them all" >&2; exit 1; }
n8n-export restore "$(ls "$w"/n8n/*.json)"
[ "$(workflows | cut -f2)" = "$names_before" ] || { echo "n8n: restored workflows differ" >&2; exit 1; }
echo "n8n: all $(printf '%s\n' "$names_before" | wc -l) workflows back"

say "6. backup.sh with MinIO unreachable: the others are published, the report says partial, exit 1"
if MINIO_ENDPOINT=http://127.0.0.1:9 scripts/backup.sh; then
    echo "backup.sh succeeded with MinIO unreachable" >&2
    exit 1
fi
grep '"status"' "$BACKUP_DIR/backup_report.json" | head -n 1

say "7. encrypted: backup.sh --type full to a throwaway age key, verified and restored with its identity"
age-keygen -o "$DEMO_DIR/age.key" 2>"$DEMO_DIR/age.pub"
chmod 600 "$DEMO_DIR/age.key"
recipient=$(sed -n 's/^Public key: //p' "$DEMO_DIR/age.pub")
# This host only encrypts (no identity), so it cannot drill what it wrote:
# drills go where the identity is (BACKUP_RESTORE_TEST=never here).
BACKUP_AGE_RECIPIENTS=$recipient BACKUP_RESTORE_TEST=never scripts/backup.sh --type full
ls -l "$BACKUP_DIR"/*/*_latest*.age
backup-verify    # without the identity: sidecar and age header only
BACKUP_AGE_IDENTITY_FILE="$DEMO_DIR/age.key" backup-verify
BACKUP_AGE_IDENTITY_FILE="$DEMO_DIR/age.key" POSTGRES_DB=arasul_db_from_age \
    pg-dumpwrap restore --create "$BACKUP_DIR/postgres/arasul_db_latest.sql.gz.age"
[ "$(pg_digest arasul_db)" = "$(pg_digest arasul_db_from_age)" ] ||
    { echo "PostgreSQL: the restore of the encrypted dump differs" >&2; exit 1; }
echo "PostgreSQL: arasul_db_from_age (from the encrypted dump) matches arasul_db"
age -d -i "$DEMO_DIR/age.key" "$BACKUP_DIR/postgres/arasul_db_latest.sql.gz.age" | gunzip | grep -c 'COPY ' |
    sed 's/^/by hand (age -d | gunzip): COPY blocks in the dump: /'

say "the page of the last report: $BACKUP_DIR/backup_report.html (open it in a browser)"
grep -o 'id="run-status">[a-z]*' "$BACKUP_DIR/backup_report.html" | sed 's/.*>/last run on the page: /'
backup-report --html - >/dev/null && echo "backup-report --html - draws it again on demand"

say "the backup tree: $BACKUP_DIR"
ls -la "$BACKUP_DIR" "$BACKUP_DIR"/*/
echo
echo "Demo done: every component was backed up, verified and restored. Files are in $DEMO_DIR; the services were stopped."
