//! A Qdrant stand-in: the part of Qdrant 1.18's REST API that snapshots use,
//! behaving as the recordings in `shared/qdrant/` show (status codes, content
//! types, JSON shapes, plain-text 401/404 bodies, same-second snapshot names).
//! `tests/harness/tests/qdrant_standin.rs` replays both recorded transcripts
//! against it. Faults are switched on per test through `faults()`.
//!
//! Snapshots of a collection holding exactly the recorded `documents` state are
//! the real recorded snapshot file; others are small tars in the same layout
//! (`config.json` first). Uploads must be tars; the stand-in restores only
//! snapshots it knows (its own, and the real recorded ones).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, Server};

/// The folder of the recordings: `$QDRANT_RECORDINGS`, else the copy in
/// `tests/fixtures/qdrant/`.
pub fn recordings_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QDRANT_RECORDINGS") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/qdrant")
}

const INSTANCE_ID: &str = "1164898771561715";
const VERSION_BODY: &str = r#"{"title":"qdrant - vector search engine","version":"1.18.3","commit":"db8fa43fcb6aedec1e739487e17a99731b74590a"}"#;

/// Faults a test can switch on.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Close the connection after half of a snapshot download.
    pub drop_mid_download: bool,
    /// Report a checksum on creation that does not match the snapshot.
    pub wrong_checksum: bool,
    /// Wait this long before sending each 64 KiB of a download.
    pub slow_download: Option<Duration>,
    /// Answer snapshot creation with a 500.
    pub fail_create: bool,
    /// Work this long, silently, before answering a snapshot creation.
    pub slow_create: Option<Duration>,
    /// Answer snapshot uploads with a 500.
    pub fail_upload: bool,
    /// Forget every snapshot once it has been downloaded, as when a second snapshot
    /// made in the same second replaced it: deleting it then answers 404.
    pub lose_snapshots_after_download: bool,
}

#[derive(Clone)]
enum Body {
    Bytes(Arc<Vec<u8>>),
    File(PathBuf),
}

#[derive(Clone)]
struct Snapshot {
    name: String,
    creation_time: String,
    size: u64,
    checksum: String,
    body: Body,
}

impl Snapshot {
    fn describe(&self) -> Value {
        json!({"name": self.name, "creation_time": self.creation_time, "size": self.size, "checksum": self.checksum})
    }
}

#[derive(Clone, Default)]
struct Collection {
    vectors: Value,
    points: BTreeSet<String>,
    snapshots: BTreeMap<String, Snapshot>,
    /// A file to serve as this collection's snapshot (for benchmarks).
    snapshot_file: Option<(PathBuf, u64, String)>,
}

#[derive(Default)]
struct State {
    collections: BTreeMap<String, Collection>,
    /// Alias name → collection name (Qdrant's alias table).
    aliases: BTreeMap<String, String>,
    full: BTreeMap<String, Snapshot>,
    /// What each known snapshot (by sha256) restores to: vectors, point ids.
    known: HashMap<String, (Value, BTreeSet<String>)>,
    faults: Faults,
    requests: Vec<String>,
    /// A fixed "now" for snapshot names, so that a replay does not depend on
    /// which second its requests fall in.
    frozen_now: Option<chrono::DateTime<chrono::Utc>>,
}

impl State {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.frozen_now.unwrap_or_else(chrono::Utc::now)
    }

    /// A collection's name, or the one an alias of that name points to
    /// (collection endpoints answer through aliases, as Qdrant's do).
    fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map(String::as_str).unwrap_or(name)
    }

    fn aliases_of(&self, collection: Option<&str>) -> Value {
        let list: Vec<Value> = self
            .aliases
            .iter()
            .filter(|(_, c)| collection.is_none_or(|want| want == c.as_str()))
            .map(|(a, c)| json!({"alias_name": a, "collection_name": c}))
            .collect();
        json!({"aliases": list})
    }
}

pub struct QdrantStandin {
    pub url: String,
    pub api_key: Option<String>,
    state: Arc<Mutex<State>>,
    server: Arc<Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl QdrantStandin {
    pub fn start(api_key: Option<&str>) -> QdrantStandin {
        Self::start_on(api_key, 0)
    }

    /// Starts on a given port (0: any free one), e.g. one a client is already trying.
    pub fn start_on(api_key: Option<&str>, port: u16) -> QdrantStandin {
        let server = Arc::new(Server::http(("127.0.0.1", port)).expect("bind the Qdrant stand-in"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let state = Arc::new(Mutex::new(State::default()));
        {
            // The real recorded collection snapshot restores to the recorded state.
            let real = std::fs::read(recordings_dir().join("collection-documents.snapshot"))
                .expect("shared/qdrant/collection-documents.snapshot");
            let ids = (1..=50).map(|i: u32| i.to_string()).collect();
            state.lock().unwrap().known.insert(
                sha256(&real),
                (json!({"size": 4, "distance": "Cosine"}), ids),
            );
        }
        let key = api_key.map(str::to_owned);
        let (srv, st, k) = (server.clone(), state.clone(), key.clone());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let (st, k) = (st.clone(), k.clone());
                std::thread::spawn(move || handle(request, &st, k.as_deref()));
            }
        });
        QdrantStandin {
            url: format!("http://127.0.0.1:{port}"),
            api_key: key,
            state,
            server,
            thread: Some(thread),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every snapshot from now on is made "at" `t`, as snapshots made within one
    /// second are: they get the same name.
    pub fn freeze_clock(&self, t: chrono::DateTime<chrono::Utc>) {
        self.state().frozen_now = Some(t);
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// Creates a collection with `points` points of `size`-dimensional vectors.
    pub fn add_collection(&self, name: &str, size: u32, points: u32) {
        let mut st = self.state();
        st.collections.insert(
            name.to_owned(),
            Collection {
                vectors: json!({"size": size, "distance": "Cosine"}),
                points: (1..=points).map(|i| i.to_string()).collect(),
                ..Default::default()
            },
        );
    }

    /// Serves `file` as the snapshot of collection `name` (which it creates);
    /// an upload of the same bytes (a tar, as Qdrant's snapshots are) restores
    /// that collection, as for any snapshot the stand-in made.
    pub fn serve_file_as_snapshot(&self, name: &str, file: &Path) {
        let mut hasher = Sha256::new();
        std::io::copy(&mut std::fs::File::open(file).unwrap(), &mut hasher).unwrap();
        let size = std::fs::metadata(file).unwrap().len();
        let sha = hex::encode(hasher.finalize());
        self.add_collection(name, 4, 1);
        let mut st = self.state();
        let c = st.collections.get_mut(name).unwrap();
        c.snapshot_file = Some((file.to_owned(), size, sha.clone()));
        let known = (c.vectors.clone(), c.points.clone());
        st.known.insert(sha, known);
    }

    /// Points `alias` at `collection`, as `create_alias` does.
    pub fn point_alias(&self, alias: &str, collection: &str) {
        self.state()
            .aliases
            .insert(alias.to_owned(), collection.to_owned());
    }

    /// Every alias and its collection, sorted.
    pub fn aliases(&self) -> Vec<(String, String)> {
        let st = self.state();
        st.aliases
            .iter()
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect()
    }

    /// Every collection's name, sorted.
    pub fn collections(&self) -> Vec<String> {
        self.state().collections.keys().cloned().collect()
    }

    pub fn points_count(&self, name: &str) -> Option<usize> {
        self.state().collections.get(name).map(|c| c.points.len())
    }

    /// The snapshots the server still holds for a collection (`None`: full snapshots).
    pub fn remote_snapshots(&self, collection: Option<&str>) -> Vec<String> {
        let st = self.state();
        match collection {
            Some(c) => st
                .collections
                .get(c)
                .map(|c| c.snapshots.keys().cloned().collect())
                .unwrap_or_default(),
            None => st.full.keys().cloned().collect(),
        }
    }

    /// Deletes a collection and its aliases, as the server does.
    pub fn delete_collection(&self, name: &str) {
        let mut st = self.state();
        st.collections.remove(name);
        st.aliases.retain(|_, c| c != name);
    }

    /// Every request seen, as `METHOD path` with the headers that carried a key masked.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }
}

impl Drop for QdrantStandin {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

fn elapsed(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

type Reply = Response<Box<dyn Read + Send>>;

fn reply_bytes(status: u16, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let len = body.len();
    let mut r = Response::new(
        status.into(),
        vec![],
        Box::new(Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    );
    if let Some(ct) = content_type {
        r.add_header(header("Content-Type", ct));
    }
    r
}

fn ok(result: Value, started: Instant) -> Reply {
    json_reply(
        200,
        json!({"result": result, "status": "ok", "time": elapsed(started)}),
    )
}

fn error(status: u16, message: &str, started: Instant) -> Reply {
    json_reply(
        status,
        json!({"status": {"error": message}, "time": elapsed(started)}),
    )
}

fn json_reply(status: u16, body: Value) -> Reply {
    reply_bytes(
        status,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
}

fn text(status: u16, body: &str) -> Reply {
    reply_bytes(
        status,
        Some("text/plain; charset=utf-8"),
        body.as_bytes().to_vec(),
    )
}

fn handle(mut request: Request, state: &Arc<Mutex<State>>, api_key: Option<&str>) {
    let started = Instant::now();
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let path = path.to_owned();
    let method = request.method().clone();
    {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests.push(format!("{method} {url}"));
    }
    if let Some(reply) = check_auth(&request, api_key, &path) {
        let _ = request.respond(reply);
        return;
    }
    let mut body = Vec::new();
    let announced: Option<usize> = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Length"))
        .and_then(|h| h.value.as_str().parse().ok());
    let read = request.as_reader().read_to_end(&mut body);
    if read.is_err() || announced.is_some_and(|n| body.len() < n) {
        // A body cut off mid-way (the client abandoned the request): Qdrant
        // acts on nothing it did not fully receive.
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests
            .push(format!("{method} {url} (abandoned by the client)"));
        return;
    }
    let content_type = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_owned())
        .unwrap_or_default();
    let wait = !query.split('&').any(|kv| kv == "wait=false");
    // Segments are decoded after splitting: `..%2F..%2Fetc` stays one (odd) snapshot name.
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let reply = route(
        state,
        &method,
        &segments,
        wait,
        &body,
        &content_type,
        started,
    );
    let _ = request.respond(reply);
}

fn check_auth(request: &Request, api_key: Option<&str>, path: &str) -> Option<Reply> {
    let key = api_key?;
    if path == "/" || path == "/readyz" || path == "/healthz" || path == "/livez" {
        // Qdrant leaves the version probe and health checks open.
        return None;
    }
    let given = request.headers().iter().find_map(|h| {
        if h.field.equiv("api-key") {
            Some(h.value.as_str().to_owned())
        } else if h.field.equiv("Authorization") {
            h.value.as_str().strip_prefix("Bearer ").map(str::to_owned)
        } else {
            None
        }
    });
    match given {
        None => Some(reply_bytes(
            401,
            None,
            b"Must provide an API key or an Authorization bearer token".to_vec(),
        )),
        Some(k) if k != key => Some(reply_bytes(401, None, b"Invalid API key or JWT".to_vec())),
        Some(_) => None,
    }
}

fn route(
    state: &Arc<Mutex<State>>,
    method: &Method,
    seg: &[&str],
    wait: bool,
    body: &[u8],
    content_type: &str,
    started: Instant,
) -> Reply {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let missing = |name: &str| {
        error(
            404,
            &format!("Not found: Collection `{name}` doesn't exist!"),
            started,
        )
    };
    match (method, seg) {
        (Method::Get, [""]) => reply_bytes(
            200,
            Some("application/json"),
            VERSION_BODY.as_bytes().to_vec(),
        ),
        (Method::Get, ["readyz"]) => text(200, "all shards are ready"),
        (Method::Get, ["collections"]) => {
            let list: Vec<Value> = st.collections.keys().map(|n| json!({"name": n})).collect();
            ok(json!({"collections": list}), started)
        }
        (Method::Get, ["collections", name]) => match st.collections.get(st.resolve(name)) {
            Some(c) => ok(collection_info(c), started),
            None => missing(name),
        },
        (Method::Get, ["collections", name, "exists"]) => {
            let exists = st.collections.contains_key(st.resolve(name));
            ok(json!({"exists": exists}), started)
        }
        (Method::Get, ["aliases"]) => ok(st.aliases_of(None), started),
        (Method::Get, ["collections", name, "aliases"]) => {
            if !st.collections.contains_key(*name) {
                return missing(name);
            }
            ok(st.aliases_of(Some(name)), started)
        }
        (Method::Post, ["collections", "aliases"]) => {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let actions = req["actions"].as_array().cloned().unwrap_or_default();
            // All or nothing, as Qdrant applies one request's actions.
            let mut aliases = st.aliases.clone();
            for action in &actions {
                if let Some(a) = action.get("create_alias") {
                    let collection = a["collection_name"].as_str().unwrap_or_default();
                    if !st.collections.contains_key(collection) {
                        return missing(collection);
                    }
                    let alias = a["alias_name"].as_str().unwrap_or_default();
                    aliases.insert(alias.to_owned(), collection.to_owned());
                } else if let Some(a) = action.get("delete_alias") {
                    aliases.remove(a["alias_name"].as_str().unwrap_or_default());
                } else if let Some(a) = action.get("rename_alias") {
                    let old = a["old_alias_name"].as_str().unwrap_or_default();
                    let new = a["new_alias_name"].as_str().unwrap_or_default();
                    if let Some(c) = aliases.remove(old) {
                        aliases.insert(new.to_owned(), c);
                    }
                }
            }
            st.aliases = aliases;
            ok(json!(true), started)
        }
        (Method::Put, ["collections", name]) if st.aliases.contains_key(*name) => error(
            400,
            &format!(
                "Wrong input: Can't create collection with name {name}. Alias with the same name already exists"
            ),
            started,
        ),
        (Method::Put, ["collections", name]) => {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            st.collections.insert(
                (*name).to_owned(),
                Collection {
                    vectors: req["vectors"].clone(),
                    ..Default::default()
                },
            );
            ok(json!(true), started)
        }
        (Method::Delete, ["collections", name]) => {
            let existed = st.collections.remove(*name).is_some();
            // A collection's aliases go with it.
            st.aliases.retain(|_, c| c != name);
            ok(json!(existed), started)
        }
        (Method::Put, ["collections", name, "points"]) => {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(c) = st.collections.get_mut(*name) else {
                return missing(name);
            };
            for p in req["points"].as_array().cloned().unwrap_or_default() {
                c.points.insert(p["id"].to_string());
            }
            ok(json!({"operation_id": 1, "status": "completed"}), started)
        }
        (Method::Post, ["collections", name, "points", "count"]) => match st.collections.get(*name)
        {
            Some(c) => ok(json!({"count": c.points.len()}), started),
            None => missing(name),
        },
        (Method::Post, ["collections", name, "snapshots"]) => {
            if let Some(d) = st.faults.slow_create {
                std::thread::sleep(d);
            }
            if st.faults.fail_create {
                return error(
                    500,
                    "Service internal error: No space left on device (os error 28)",
                    started,
                );
            }
            if !st.collections.contains_key(*name) {
                return missing(name);
            }
            let snap = collection_snapshot(&mut st, name);
            let mut described = snap.describe();
            if st.faults.wrong_checksum {
                described["checksum"] = json!("0".repeat(64));
            }
            let c = st.collections.get_mut(*name).unwrap();
            register(&mut c.snapshots, snap, wait);
            if wait {
                ok(described, started)
            } else {
                json_reply(202, json!({"status": "accepted", "time": elapsed(started)}))
            }
        }
        (Method::Get, ["collections", name, "snapshots"]) => match st.collections.get(*name) {
            Some(c) => ok(
                Value::Array(c.snapshots.values().map(Snapshot::describe).collect()),
                started,
            ),
            None => missing(name),
        },
        (Method::Get, ["collections", name, "snapshots", snap]) => {
            let found = st
                .collections
                .get(*name)
                .and_then(|c| c.snapshots.get(*snap))
                .cloned();
            if found.is_some() && st.faults.lose_snapshots_after_download {
                st.collections
                    .get_mut(*name)
                    .unwrap()
                    .snapshots
                    .remove(*snap);
            }
            match found {
                Some(s) => download(&s, &st.faults),
                None => text(404, &format!("Not found: Snapshot {snap} not found")),
            }
        }
        (Method::Delete, ["collections", name, "snapshots", snap]) => {
            let Some(c) = st.collections.get_mut(*name) else {
                return missing(name);
            };
            match c.snapshots.remove(*snap) {
                Some(_) => ok(json!(true), started),
                None => error(
                    404,
                    &format!("Not found: Snapshot {snap} not found"),
                    started,
                ),
            }
        }
        (Method::Post, ["collections", name, "snapshots", "upload"]) => {
            if st.faults.fail_upload {
                return error(
                    500,
                    "Service internal error: No space left on device (os error 28)",
                    started,
                );
            }
            let Some(file) = multipart_file(body, content_type) else {
                return error(
                    400,
                    "Format error in multipart body: no snapshot part",
                    started,
                );
            };
            if !is_tar(file) {
                return error(
                    500,
                    "Service internal error: File IO error: Malformed tar archive, reached unknown entry",
                    started,
                );
            }
            // A snapshot it made, or one in its layout made by another
            // stand-in (a fresh server restoring a backup, as Qdrant does).
            let Some((vectors, points)) = st
                .known
                .get(&sha256(file))
                .cloned()
                .or_else(|| read_synthetic(file))
            else {
                return error(500, "Service internal error: the stand-in cannot restore a snapshot it did not make", started);
            };
            st.collections.insert(
                (*name).to_owned(),
                Collection {
                    vectors,
                    points,
                    ..Default::default()
                },
            );
            ok(json!(true), started)
        }
        (Method::Put, ["collections", _name, "snapshots", "recover"]) => {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let location = req["location"].as_str().unwrap_or_default();
            if location.starts_with("file://") {
                error(
                    403,
                    "Forbidden: Snapshot file path must be inside the snapshots directory \"/qdrant/snapshots\"",
                    started,
                )
            } else {
                error(
                    500,
                    &format!("Service internal error: Http request error: error sending request for url ({location})"),
                    started,
                )
            }
        }
        (Method::Post, ["snapshots"]) => {
            let real =
                std::fs::read(recordings_dir().join("full-storage.snapshot")).unwrap_or_default();
            let snap = Snapshot {
                name: format!("full-snapshot-{}.snapshot", now_stamp(&st)),
                creation_time: now_iso(&st),
                size: real.len() as u64,
                checksum: sha256(&real),
                body: Body::Bytes(Arc::new(real)),
            };
            let described = snap.describe();
            register(&mut st.full, snap, wait);
            if wait {
                ok(described, started)
            } else {
                json_reply(202, json!({"status": "accepted", "time": elapsed(started)}))
            }
        }
        (Method::Get, ["snapshots"]) => ok(
            Value::Array(st.full.values().map(Snapshot::describe).collect()),
            started,
        ),
        (Method::Get, ["snapshots", snap]) => match st.full.get(*snap).cloned() {
            Some(s) => download(&s, &st.faults),
            None => text(404, &format!("Not found: Snapshot {snap} not found")),
        },
        (Method::Delete, ["snapshots", snap]) => match st.full.remove(*snap) {
            Some(_) => ok(json!(true), started),
            None => error(
                404,
                &format!("Not found: Snapshot {snap} not found"),
                started,
            ),
        },
        _ => text(404, "Not found"),
    }
}

/// Two snapshots within one second share a name; as recorded, a second one
/// made asynchronously replaces the first and is then not to be found.
fn register(map: &mut BTreeMap<String, Snapshot>, snap: Snapshot, wait: bool) {
    if map.remove(&snap.name).is_some() && !wait {
        return;
    }
    map.insert(snap.name.clone(), snap);
}

fn collection_info(c: &Collection) -> Value {
    json!({
        "status": "green", "optimizer_status": "ok", "indexed_vectors_count": 0,
        "points_count": c.points.len(), "segments_count": 2,
        "config": {
            "params": {"vectors": c.vectors, "shard_number": 1, "replication_factor": 1,
                       "write_consistency_factor": 1, "on_disk_payload": true},
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                            "max_indexing_threads": 0, "on_disk": false},
            "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                                 "default_segment_number": 0, "max_segment_size": null, "memmap_threshold": null,
                                 "indexing_threshold": 10000, "flush_interval_sec": 5,
                                 "max_optimization_threads": null, "prevent_unoptimized": null},
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1},
            "quantization_config": null
        },
        "payload_schema": {},
        "update_queue": {"length": 0}
    })
}

fn now_stamp(st: &State) -> String {
    st.now().format("%Y-%m-%d-%H-%M-%S").to_string()
}

fn now_iso(st: &State) -> String {
    st.now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn collection_snapshot(st: &mut State, name: &str) -> Snapshot {
    let c = &st.collections[name];
    let snap_name = format!("{name}-{INSTANCE_ID}-{}.snapshot", now_stamp(st));
    let creation_time = now_iso(st);
    if let Some((path, size, checksum)) = &c.snapshot_file {
        return Snapshot {
            name: snap_name,
            creation_time,
            size: *size,
            checksum: checksum.clone(),
            body: Body::File(path.clone()),
        };
    }
    let recorded_state = c.vectors == json!({"size": 4, "distance": "Cosine"})
        && c.points
            == (1..=50)
                .map(|i: u32| i.to_string())
                .collect::<BTreeSet<_>>();
    let bytes = if recorded_state {
        std::fs::read(recordings_dir().join("collection-documents.snapshot")).unwrap()
    } else {
        synthetic_snapshot(c)
    };
    let checksum = sha256(&bytes);
    st.known
        .insert(checksum.clone(), (c.vectors.clone(), c.points.clone()));
    Snapshot {
        name: snap_name,
        creation_time,
        size: bytes.len() as u64,
        checksum,
        body: Body::Bytes(Arc::new(bytes)),
    }
}

/// What a `synthetic_snapshot` holds: the vectors' parameters and the points.
fn read_synthetic(file: &[u8]) -> Option<(Value, BTreeSet<String>)> {
    use std::io::Read;
    let mut archive = tar::Archive::new(file);
    let (mut vectors, mut points) = (None, None);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        let mut text = String::new();
        entry.read_to_string(&mut text).ok()?;
        match path.as_str() {
            "config.json" => {
                let v: Value = serde_json::from_str(&text).ok()?;
                vectors = Some(v["params"]["vectors"].clone());
            }
            "0/points.json" => points = serde_json::from_str(&text).ok(),
            _ => {}
        }
    }
    Some((vectors?, points?))
}

/// A tar in the layout of a real collection snapshot: `config.json` with the
/// collection's parameters, and the points (as ids) in place of segments.
fn synthetic_snapshot(c: &Collection) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let config = json!({"params": {"vectors": c.vectors, "shard_number": 1}}).to_string();
    let points = serde_json::to_string(&c.points).unwrap();
    for (name, data) in [
        ("config.json", config.as_bytes()),
        ("0/points.json", points.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        builder.append_data(&mut h, name, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn download(snap: &Snapshot, faults: &Faults) -> Reply {
    let reader: Box<dyn Read + Send> = match &snap.body {
        Body::Bytes(b) => Box::new(Cursor::new(b.as_ref().clone())),
        Body::File(p) => Box::new(std::fs::File::open(p).unwrap()),
    };
    let reader: Box<dyn Read + Send> = Box::new(FaultyReader {
        inner: reader,
        sent: 0,
        cut_at: faults.drop_mid_download.then_some(snap.size / 2),
        delay: faults.slow_download,
    });
    let mut r = Response::new(200.into(), vec![], reader, Some(snap.size as usize), None);
    r.add_header(header("Content-Type", "application/octet-stream"));
    r
}

struct FaultyReader {
    inner: Box<dyn Read + Send>,
    sent: u64,
    cut_at: Option<u64>,
    delay: Option<Duration>,
}

impl Read for FaultyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
        let mut limit = buf.len().min(64 * 1024);
        if let Some(cut) = self.cut_at {
            if self.sent >= cut {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fault: dropped mid-body",
                ));
            }
            limit = limit.min((cut - self.sent) as usize);
        }
        let n = self.inner.read(&mut buf[..limit])?;
        self.sent += n as u64;
        Ok(n)
    }
}

fn is_tar(bytes: &[u8]) -> bool {
    let mut archive = tar::Archive::new(bytes);
    let Ok(entries) = archive.entries() else {
        return false;
    };
    let mut count = 0;
    for entry in entries {
        match entry {
            Ok(mut e) => {
                if std::io::copy(&mut e, &mut std::io::sink()).is_err() {
                    return false;
                }
                count += 1;
            }
            Err(_) => return false,
        }
    }
    count > 0
}

/// The first file part of a multipart/form-data body. (A test server's
/// minimal reading of the format; the tool itself uses reqwest's multipart.)
fn multipart_file<'a>(body: &'a [u8], content_type: &str) -> Option<&'a [u8]> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let start = find(body, delimiter.as_bytes())? + delimiter.len();
    let headers_end = start + find(&body[start..], b"\r\n\r\n")? + 4;
    let end = headers_end + find(&body[headers_end..], format!("\r\n{delimiter}").as_bytes())?;
    Some(&body[headers_end..end])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
