//! Real S3 servers for the tests, on loopback with their own keys and temp
//! folders, plus a small client to fill and inspect buckets: s3s-fs (it checks
//! SigV4 signatures and stores objects as files) and Garage (a single-node
//! cluster; it stores keys as data, so it holds keys no file system can), as
//! scripts/test.sh installs them (or `$S3S_FS_BIN`, `$GARAGE_BIN`).

use backup_common::s3::object_url;
use rusty_s3::{Bucket, Credentials, Map, Method, S3Action, UrlStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Which server: minio-snap's tests run against each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    S3sFs,
    Garage,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::S3sFs => "s3s-fs",
            Flavor::Garage => "Garage",
        }
    }
}

pub struct S3Server {
    pub flavor: Flavor,
    pub endpoint: String,
    /// The region the server signs for (`MINIO_REGION`).
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    dir: tempfile::TempDir,
    process: Option<Child>,
}

fn installed(var: &str, default: &str, what: &str) -> PathBuf {
    if let Some(b) = std::env::var_os(var) {
        return b.into();
    }
    let b = PathBuf::from(default);
    assert!(
        b.exists(),
        "{what} is not installed at {}: run scripts/test.sh or set {var}",
        b.display()
    );
    b
}

pub fn bin() -> PathBuf {
    installed("S3S_FS_BIN", "/opt/backup-kit/s3s-fs/bin/s3s-fs", "s3s-fs")
}

pub fn garage_bin() -> PathBuf {
    installed("GARAGE_BIN", "/opt/backup-kit/garage/bin/garage", "Garage")
}

const SIGNED_FOR: Duration = Duration::from_secs(600);

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}

impl S3Server {
    /// s3s-fs, the server most tests use.
    pub fn start() -> S3Server {
        S3Server::start_as(Flavor::S3sFs)
    }

    pub fn start_as(flavor: Flavor) -> S3Server {
        match flavor {
            Flavor::S3sFs => S3Server::start_s3s_fs(),
            Flavor::Garage => S3Server::start_garage(),
        }
    }

    /// s3s-fs on a free port; started again on another if the port was
    /// taken before s3s-fs could bind it (see `listening`).
    fn start_s3s_fs() -> S3Server {
        let dir = tempfile::Builder::new().prefix("bk-s3-").tempdir().unwrap();
        let access_key = "bk-test-access".to_owned();
        for _ in 0..5 {
            let port = crate::free_port();
            let secret_key = format!("bk-test-secret-{port}");
            let mut process = Command::new(bin())
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs");
            if crate::listening::wait(&mut process, port, "s3s-fs").is_ok() {
                return S3Server {
                    flavor: Flavor::S3sFs,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    region: "us-east-1".into(),
                    access_key,
                    secret_key,
                    dir,
                    process: Some(process),
                };
            }
        }
        panic!("s3s-fs exited on start five times (ports taken?)");
    }

    /// A single-node Garage: its config, the node's role in the layout, and a
    /// key that may create buckets (the steps of Garage's quick start).
    fn start_garage() -> S3Server {
        let server = (0..5)
            .find_map(|_| S3Server::spawn_garage())
            .expect("Garage exited on start five times (ports taken?)");
        // The port opens before the admin handlers are registered (the CLI
        // then says "No handler"): poll a harmless command until it answers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Err(e) = server.try_garage(&["status"]) {
            assert!(
                std::time::Instant::now() < deadline,
                "Garage did not answer its CLI: {e}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let node = server.garage(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_owned();
        server.garage(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        server.garage(&["layout", "apply", "--version", "1"]);
        let (key, secret) = (server.access_key.clone(), server.secret_key.clone());
        server.garage(&["key", "import", "--yes", "-n", "tests", &key, &secret]);
        server.garage(&["key", "allow", "--create-bucket", &key]);
        server
    }

    /// A Garage server on two free ports, listening on both; `None` if it
    /// exited first (a port was taken before it could bind it).
    fn spawn_garage() -> Option<S3Server> {
        let dir = tempfile::Builder::new()
            .prefix("bk-garage-")
            .tempdir()
            .unwrap();
        let (s3_port, rpc_port) = (crate::free_port(), crate::free_port());
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3_port}"
"#,
                root = dir.path().display(),
                secret = random_hex(32),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut process = Command::new(garage_bin())
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start garage");
        for (port, what) in [(rpc_port, "Garage's RPC"), (s3_port, "Garage's S3 API")] {
            crate::listening::wait(&mut process, port, what).ok()?;
        }
        let access_key = format!("GK{}", random_hex(12));
        let secret_key = random_hex(32);
        Some(S3Server {
            flavor: Flavor::Garage,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            region: "garage".into(),
            access_key,
            secret_key,
            dir,
            process: Some(process),
        })
    }

    /// Runs Garage's CLI on this server; its stdout.
    fn garage(&self, args: &[&str]) -> String {
        self.try_garage(args)
            .unwrap_or_else(|e| panic!("garage {}: {e}", args.join(" ")))
    }

    fn try_garage(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run garage");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    fn bucket(&self, name: &str) -> Bucket {
        Bucket::new(
            self.endpoint.parse().unwrap(),
            UrlStyle::Path,
            name.to_owned(),
            self.region.clone(),
        )
        .unwrap()
    }

    fn creds(&self) -> Credentials {
        Credentials::new(&self.access_key, &self.secret_key)
    }

    /// Creates a bucket. A Garage cluster whose layout was just applied answers
    /// 503 until it is ready: that is waited for.
    pub fn create_bucket(&self, name: &str) {
        let url = self
            .bucket(name)
            .create_bucket(&self.creds())
            .sign(SIGNED_FOR);
        let status = crate::wait_for(
            &format!("{} to take bucket {name}", self.flavor.name()),
            || {
                let r = reqwest::blocking::Client::new()
                    .put(url.clone())
                    .send()
                    .unwrap();
                (r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE).then_some(r.status())
            },
        );
        assert!(status.is_success(), "create bucket {name}: {status}");
    }

    /// A signed URL for a request on one object, by its exact key (the way
    /// minio-snap asks: `backup_common::s3`).
    fn object(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        headers: &Map<'_>,
    ) -> Result<url::Url, String> {
        object_url(
            &self.bucket(bucket),
            &self.creds(),
            method,
            key,
            &[],
            headers,
            SIGNED_FOR,
        )
        .map_err(|e| e.to_string())
    }

    /// Every bucket the server lists (ListBuckets), sorted.
    pub fn buckets(&self) -> Vec<String> {
        let url = backup_common::s3::list_buckets_url(
            &self.endpoint.parse().unwrap(),
            &self.region,
            &self.creds(),
            SIGNED_FOR,
        )
        .unwrap();
        let text = reqwest::blocking::Client::new()
            .get(url)
            .send()
            .unwrap()
            .text()
            .unwrap();
        let mut names: Vec<String> = text
            .split("<Name>")
            .skip(1)
            .filter_map(|s| s.split("</Name>").next())
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        content_type: &str,
        meta: &[(&str, &str)],
    ) {
        if let Err(e) = self.try_put(bucket, key, data, content_type, meta) {
            panic!("put {key:?}: {e}");
        }
    }

    /// Stores an object; `Err` says why the server refused it.
    pub fn try_put(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        content_type: &str,
        meta: &[(&str, &str)],
    ) -> Result<(), String> {
        let mut headers = Map::new();
        headers.insert("content-type", content_type.to_owned());
        for (k, v) in meta {
            headers.insert(format!("x-amz-meta-{k}"), v.to_string());
        }
        let url = self.object(Method::Put, bucket, key, &headers)?;
        let mut req = reqwest::blocking::Client::new()
            .put(url)
            .header("content-type", content_type)
            .body(data.to_vec());
        for (k, v) in meta {
            req = req.header(format!("x-amz-meta-{k}"), *v);
        }
        let r = req.send().map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!(
                "{} {}",
                r.status(),
                r.text().unwrap_or_default().trim()
            ));
        }
        Ok(())
    }

    /// An object's bytes, content type and user metadata; `None` if absent.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Option<(Vec<u8>, String, BTreeMap<String, String>)> {
        let url = self
            .object(Method::Get, bucket, key, &Map::new())
            .unwrap_or_else(|e| panic!("{e}"));
        let r = reqwest::blocking::Client::new().get(url).send().unwrap();
        if r.status().as_u16() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "get {key:?}: {}", r.status());
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let meta = r
            .headers()
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    n.as_str().strip_prefix("x-amz-meta-")?.to_owned(),
                    v.to_str().ok()?.to_owned(),
                ))
            })
            .collect();
        Some((r.bytes().unwrap().to_vec(), ct, meta))
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        if let Err(e) = self.try_delete(bucket, key) {
            panic!("delete {key:?}: {e}");
        }
    }

    pub fn try_delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        let url = self.object(Method::Delete, bucket, key, &Map::new())?;
        let r = reqwest::blocking::Client::new()
            .delete(url)
            .send()
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(r.status().to_string());
        }
        Ok(())
    }

    /// Every key of a bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let b = self.bucket(bucket);
        let creds = self.creds();
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = rusty_s3::actions::ListObjectsV2::new(&b, Some(&creds));
            action.query_mut().remove("encoding-type");
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let text = reqwest::blocking::get(action.sign(SIGNED_FOR))
                .unwrap()
                .text()
                .unwrap();
            let page: Page = quick_xml::de::from_str(&text).unwrap();
            let encoded = page.encoding_type.as_deref() == Some("url");
            keys.extend(page.contents.into_iter().map(|c| {
                if encoded {
                    percent_encoding::percent_decode_str(&c.key)
                        .decode_utf8_lossy()
                        .into_owned()
                } else {
                    c.key
                }
            }));
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        keys.sort();
        keys
    }

    /// s3s-fs's backing folder (Garage keeps its own database there).
    pub fn root(&self) -> &std::path::Path {
        self.dir.path()
    }
}

#[derive(serde::Deserialize)]
struct Page {
    #[serde(rename = "Contents", default)]
    contents: Vec<Listed>,
    #[serde(rename = "NextContinuationToken")]
    next_continuation_token: Option<String>,
    #[serde(rename = "EncodingType")]
    encoding_type: Option<String>,
}

#[derive(serde::Deserialize)]
struct Listed {
    #[serde(rename = "Key")]
    key: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An S3 endpoint whose bucket `documents` lists one object that every GET
/// answers 404 for: how a server behaves that cannot serve a key it holds
/// (Garage with a `..` key asked for by a client that resolved the dot
/// segments). Signatures are not checked; the listing is all it knows.
pub struct ListsButWillNotServe {
    pub endpoint: String,
    server: std::sync::Arc<tiny_http::Server>,
}

impl ListsButWillNotServe {
    pub fn start(key: &str) -> ListsButWillNotServe {
        let server =
            std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the fake S3"));
        let endpoint = format!("http://{}", server.server_addr());
        let (srv, key) = (server.clone(), key.to_owned());
        std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or_default();
                let listing = path == "/documents" || path == "/documents/";
                let (status, body) = if listing {
                    let escaped = key
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;");
                    (
                        200,
                        format!(
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>\
                             <Name>documents</Name><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>\
                             <Contents><Key>{escaped}</Key><Size>5</Size><ETag>\"x\"</ETag>\
                             <LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>\
                             </ListBucketResult>"
                        ),
                    )
                } else {
                    (
                        404,
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>\
                         <Message>The specified key does not exist.</Message></Error>"
                            .to_owned(),
                    )
                };
                let _ = request
                    .respond(tiny_http::Response::from_string(body).with_status_code(status));
            }
        });
        ListsButWillNotServe { endpoint, server }
    }
}

impl Drop for ListsButWillNotServe {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
