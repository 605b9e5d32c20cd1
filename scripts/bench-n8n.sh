#!/bin/sh
# Benchmark (not a test): backing up N (default 1000) workflows through the API
# with n8n-export, against `n8n export:workflow --all` (which boots all of n8n),
# alternating in one run on the same throwaway n8n. Target: <= 0.5x the CLI's wall.
set -eu
cd "$(dirname "$0")/.."
N=${N:-1000}
ROUNDS=${ROUNDS:-3}
N8N_BIN=${N8N_BIN:-/opt/backup-kit/n8n-2.8.4/node_modules/.bin/n8n}
work=${BENCH_DIR:-/tmp/backup-kit-bench-n8n}
cargo build --release --locked --quiet -p n8n-export
tool="$(pwd)/target/release/n8n-export"
rm -rf "$work"; mkdir -p "$work/data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export N8N_USER_FOLDER="$work/data" N8N_ENCRYPTION_KEY=bench-key N8N_DIAGNOSTICS_ENABLED=false \
    N8N_VERSION_NOTIFICATIONS_ENABLED=false N8N_TEMPLATES_ENABLED=false N8N_PERSONALIZATION_ENABLED=false
N8N_PORT=$port N8N_LISTEN_ADDRESS=127.0.0.1 N8N_SECURE_COOKIE=false N8N_RUNNERS_ENABLED=false \
    "$N8N_BIN" start > "$work/n8n.log" 2>&1 &
n8n_pid=$!
trap 'kill $n8n_pid 2>/dev/null || true' EXIT INT TERM
url="http://127.0.0.1:$port"
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/api/v1/workflows")" = 401 ]; do sleep 0.5; done
curl -s -c "$work/cookies" -X POST "$url/rest/owner/setup" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","firstName":"B","lastName":"B","password":"Bench-Passw0rd-long"}' > /dev/null
key=$(curl -s -b "$work/cookies" -X POST "$url/rest/api-keys" -H 'content-type: application/json' \
    -d '{"label":"bench","expiresAt":null,"scopes":["workflow:read","workflow:list"]}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["rawApiKey"])')
python3 - "$N" > "$work/import.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps([{"id": f"bench{i:011d}", "name": f"Bench {i}", "active": False, "settings": {},
    "nodes": [{"id": f"n{i}", "name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1,
               "position": [0, 0], "parameters": {}},
              {"id": f"c{i}", "name": "Code", "type": "n8n-nodes-base.code", "typeVersion": 2,
               "position": [200, 0], "parameters": {"jsCode": "return items;" * 20}}],
    "connections": {"Start": {"main": [[{"node": "Code", "type": "main", "index": 0}]]}}} for i in range(n)]))
PY
"$N8N_BIN" import:workflow --input="$work/import.json" > /dev/null 2>&1
echo "n8n on $url with $N workflows" >&2
: > "$work/results"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    /usr/bin/time -f "cli %e %M" -a -o "$work/results" "$N8N_BIN" export:workflow --all --output="$work/cli.json" > /dev/null 2>&1
    N8N_API_KEY=$key /usr/bin/time -f "n8n-export %e %M" -a -o "$work/results" \
        "$tool" backup --url "$url" --backup-dir "$work/tree" > /dev/null 2>&1
    i=$((i + 1))
done
cat "$work/results"
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, rss = line.split()
    rows.setdefault(label, []).append((float(wall), int(rss) / 1024))
c = statistics.median(w for w, _ in rows["cli"])
t = statistics.median(w for w, _ in rows["n8n-export"])
print(f"median wall: n8n export:workflow {c:.2f}s, n8n-export (API) {t:.2f}s, ratio {t / c:.2f} (target <= 0.5)")
print(f"peak RSS: CLI {max(r for _, r in rows['cli']):.0f} MiB, n8n-export {max(r for _, r in rows['n8n-export']):.1f} MiB")
PY
