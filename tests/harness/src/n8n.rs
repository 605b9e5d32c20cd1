//! A throwaway real n8n: the npm install that scripts/test.sh makes (or
//! `$N8N_BIN`), started on loopback with SQLite in a temp folder, telemetry and
//! outbound calls off. The owner account and an API key are made the way an
//! operator makes them, through n8n's own REST endpoints.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One n8n at a time: instances share fixed ports (the task broker's) and a
/// start takes most of both cores anyway.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct N8n {
    pub url: String,
    pub api_key: String,
    dir: tempfile::TempDir,
    bin: PathBuf,
    encryption_key: String,
    process: Child,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// Where scripts/test.sh installs n8n.
pub fn bin() -> PathBuf {
    if let Some(b) = std::env::var_os("N8N_BIN") {
        return b.into();
    }
    let b = PathBuf::from("/opt/backup-kit/n8n-2.8.4/node_modules/.bin/n8n");
    assert!(
        b.exists(),
        "n8n is not installed at {}: run scripts/test.sh (it installs it) or set N8N_BIN",
        b.display()
    );
    b
}

impl N8n {
    pub fn start() -> N8n {
        Self::start_with(&[])
    }

    /// Starts with extra environment (e.g. `N8N_PUBLIC_API_DISABLED=true`).
    pub fn start_with(extra: &[(&str, &str)]) -> N8n {
        Self::start_keyed(extra, None)
    }

    /// A fresh, empty n8n that encrypts credentials with `key` (another
    /// instance's: the host a backup is restored to).
    pub fn start_with_key(key: &str) -> N8n {
        Self::start_keyed(&[], Some(key))
    }

    fn start_keyed(extra: &[(&str, &str)], key: Option<&str>) -> N8n {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("bk-n8n-")
            .tempdir()
            .unwrap();
        let port = crate::free_port();
        let encryption_key = key
            .map(str::to_owned)
            .unwrap_or_else(|| format!("enc-{}-{port}", std::process::id()));
        let bin = bin();
        let mut cmd = Command::new(&bin);
        cmd.arg("start")
            .envs(Self::env_for(&dir, &encryption_key))
            .env("N8N_PORT", port.to_string())
            .env("N8N_LISTEN_ADDRESS", "127.0.0.1")
            .env("N8N_SECURE_COOKIE", "false")
            .env("N8N_RUNNERS_ENABLED", "false")
            .env("N8N_RUNNERS_BROKER_PORT", crate::free_port().to_string())
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("n8n.log")).unwrap())
            .stderr(Stdio::null());
        let process = cmd.spawn().expect("start n8n");
        let url = format!("http://127.0.0.1:{port}");
        let mut n8n = N8n {
            url,
            api_key: String::new(),
            dir,
            bin,
            encryption_key,
            process,
            _turn: turn,
        };
        let api_disabled = extra
            .iter()
            .any(|(k, v)| *k == "N8N_PUBLIC_API_DISABLED" && *v == "true");
        n8n.wait_ready(api_disabled);
        n8n.api_key = n8n.make_owner_and_key(api_disabled);
        n8n
    }

    fn env_for(dir: &tempfile::TempDir, encryption_key: &str) -> Vec<(String, String)> {
        [
            ("N8N_USER_FOLDER", dir.path().to_str().unwrap()),
            ("N8N_ENCRYPTION_KEY", encryption_key),
            ("N8N_DIAGNOSTICS_ENABLED", "false"),
            ("N8N_VERSION_NOTIFICATIONS_ENABLED", "false"),
            ("N8N_TEMPLATES_ENABLED", "false"),
            ("N8N_PERSONALIZATION_ENABLED", "false"),
            ("N8N_HIRING_BANNER_ENABLED", "false"),
            ("DB_TYPE", "sqlite"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Ready only when the public API answers 401 (healthz says 200 too early);
    /// with the API disabled, when /rest/settings answers.
    fn wait_ready(&mut self, api_disabled: bool) {
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        let probe = if api_disabled {
            "/rest/settings"
        } else {
            "/api/v1/workflows"
        };
        let want = if api_disabled { 200 } else { 401 };
        loop {
            if let Ok(r) = client.get(format!("{}{probe}", self.url)).send() {
                if r.status().as_u16() == want {
                    return;
                }
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!("n8n exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "n8n did not become ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("n8n.log")).unwrap_or_default();
        text.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Creates the owner; and an API key unless the API is disabled (then there
    /// is none to make, and a made-up one stands in).
    fn make_owner_and_key(&self, api_disabled: bool) -> String {
        let client = reqwest::blocking::Client::new();
        let setup = client
            .post(format!("{}/rest/owner/setup", self.url))
            .json(
                &json!({"email": "owner@example.com", "firstName": "Backup", "lastName": "Test",
                          "password": "Test-Passw0rd-long"}),
            )
            .send()
            .unwrap();
        assert!(
            setup.status().is_success(),
            "owner setup: {}",
            setup.status()
        );
        let cookie = setup
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join("; ");
        if api_disabled {
            return "no-api-key-the-api-is-disabled".into();
        }
        let scopes = [
            "workflow:read",
            "workflow:list",
            "workflow:create",
            "workflow:update",
            "workflow:delete",
            "workflow:activate",
        ];
        let key: Value = client
            .post(format!("{}/rest/api-keys", self.url))
            .header("cookie", cookie)
            .json(&json!({"label": "backup-kit", "expiresAt": null, "scopes": scopes}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        key["data"]["rawApiKey"]
            .as_str()
            .expect("rawApiKey")
            .to_owned()
    }

    /// The CLI as an `N8N_CLI` prefix that reaches this instance's database.
    pub fn cli_prefix(&self) -> String {
        let env: Vec<String> = Self::env_for(&self.dir, &self.encryption_key)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("env {} {}", env.join(" "), self.bin.display())
    }

    /// Imports workflows with their ids, through the CLI.
    pub fn import(&self, workflows: &Value) {
        let file = self.dir.path().join("import.json");
        std::fs::write(&file, serde_json::to_vec(workflows).unwrap()).unwrap();
        let out = Command::new(&self.bin)
            .arg("import:workflow")
            .arg(format!("--input={}", file.display()))
            .envs(Self::env_for(&self.dir, &self.encryption_key))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// The key this instance encrypts credentials with.
    pub fn encryption_key(&self) -> &str {
        &self.encryption_key
    }

    /// Runs the CLI on this instance; panics unless it succeeds or says
    /// `tolerated`.
    fn cli(&self, args: &[String], tolerated: Option<&str>) {
        let out = Command::new(&self.bin)
            .args(args)
            .envs(Self::env_for(&self.dir, &self.encryption_key))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() || tolerated.is_some_and(|t| said.contains(t)),
            "n8n {args:?}: {said}"
        );
    }

    /// Imports credentials given with their data in the clear (n8n encrypts
    /// it with this instance's key), with their ids.
    pub fn import_credentials(&self, credentials: &Value) {
        let file = self.dir.path().join("credentials-in.json");
        std::fs::write(&file, serde_json::to_vec(credentials).unwrap()).unwrap();
        self.cli(
            &[
                "import:credentials".into(),
                format!("--input={}", file.display()),
            ],
            None,
        );
    }

    /// Every credential as n8n decrypts it (`export:credentials --decrypted`),
    /// sorted by id: proof that this instance can read them. None: empty.
    pub fn credentials_decrypted(&self) -> Vec<Value> {
        let file = self.dir.path().join("credentials-out.json");
        let _ = std::fs::remove_file(&file);
        self.cli(
            &[
                "export:credentials".into(),
                "--all".into(),
                "--decrypted".into(),
                format!("--output={}", file.display()),
            ],
            Some("No credentials found"),
        );
        let Ok(bytes) = std::fs::read(&file) else {
            return Vec::new();
        };
        let mut list: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        list.sort_by_key(|c| c["id"].as_str().unwrap_or("").to_owned());
        list
    }

    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        reqwest::blocking::Client::new()
            .request(method, format!("{}/api/v1{path}", self.url))
            .header("X-N8N-API-KEY", &self.api_key)
    }

    /// Every workflow, through the API, sorted by name.
    pub fn workflows(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .api(reqwest::Method::GET, "/workflows")
                .query(&[("limit", "250")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: Value = req.send().unwrap().json().unwrap();
            all.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        all.sort_by_key(|w| w["name"].as_str().unwrap_or("").to_owned());
        all
    }

    pub fn delete(&self, id: &str) {
        let r = self
            .api(reqwest::Method::DELETE, &format!("/workflows/{id}"))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "delete {id}: {}", r.status());
    }
}

impl Drop for N8n {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A credential with its data in the clear (n8n encrypts it on import), with
/// a fixed id that `workflow_using_postgres_credential` refers to.
pub fn postgres_credential() -> Value {
    json!({"id": "credPostgres0001", "name": "pg main", "type": "postgres",
           "data": {"host": "db", "user": "app", "password": "pg-pass-9", "database": "shop"}})
}

/// A workflow (as an import array) whose postgres node uses
/// `postgres_credential` by id.
pub fn workflow_using_postgres_credential() -> Value {
    json!([{
        "id": "usesCreds0000001", "name": "uses credentials", "active": false,
        "nodes": [
            {"id": "n1", "name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1,
             "position": [0, 0], "parameters": {}},
            {"id": "n2", "name": "Query", "type": "n8n-nodes-base.postgres", "typeVersion": 2.5,
             "position": [200, 0], "parameters": {"operation": "executeQuery", "query": "SELECT 1"},
             "credentials": {"postgres": {"id": "credPostgres0001", "name": "pg main"}}}
        ],
        "connections": {"Start": {"main": [[{"node": "Query", "type": "main", "index": 0}]]}},
        "settings": {}
    }])
}

/// Workflows of different shapes: manual, schedule, webhook, code node, unicode
/// names, and `filler` more for pagination. Ids are fixed (n8n's 16-character form).
pub fn sample_workflows(filler: usize) -> Value {
    let node = |name: &str, kind: &str, version: f64, params: Value, x: i64| {
        json!({"id": format!("{name}-id"), "name": name, "type": kind, "typeVersion": version,
               "position": [x, 0], "parameters": params})
    };
    let mut list = vec![
        json!({"id": "manual0000000001", "name": "Manual → Set", "active": false, "settings": {},
               "nodes": [node("Start", "n8n-nodes-base.manualTrigger", 1.0, json!({}), 0),
                         node("Set", "n8n-nodes-base.set", 3.4, json!({"values": {}}), 200)],
               "connections": {"Start": {"main": [[{"node": "Set", "type": "main", "index": 0}]]}}}),
        json!({"id": "schedule00000002", "name": "Nightly schedule", "active": false, "settings": {"timezone": "Europe/Berlin"},
               "nodes": [node("Every night", "n8n-nodes-base.scheduleTrigger", 1.2,
                              json!({"rule": {"interval": [{"triggerAtHour": 2}]}}), 0)],
               "connections": {}}),
        json!({"id": "webhook000000003", "name": "Webhook intake", "active": false, "settings": {},
               "nodes": [node("Webhook", "n8n-nodes-base.webhook", 2.0, json!({"path": "intake", "httpMethod": "POST"}), 0)],
               "connections": {}}),
        json!({"id": "code000000000004", "name": "Code node", "active": false, "settings": {},
               "nodes": [node("Start", "n8n-nodes-base.manualTrigger", 1.0, json!({}), 0),
                         node("Code", "n8n-nodes-base.code", 2.0, json!({"jsCode": "return items.map(i => ({json: {n: 1}}));"}), 200)],
               "connections": {"Start": {"main": [[{"node": "Code", "type": "main", "index": 0}]]}}}),
        json!({"id": "unicode000000005", "name": "Grüße 日本語 🚀 «quotes» \"and\" \\ slashes", "active": false, "settings": {},
               "nodes": [node("Stärt", "n8n-nodes-base.manualTrigger", 1.0, json!({}), 0)],
               "connections": {}}),
    ];
    for i in 0..filler {
        list.push(json!({"id": format!("filler{i:010}"), "name": format!("Filler {i:04}"), "active": false,
                         "settings": {}, "nodes": [node("Start", "n8n-nodes-base.manualTrigger", 1.0, json!({}), 0)],
                         "connections": {}}));
    }
    Value::Array(list)
}
