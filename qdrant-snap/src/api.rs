//! The part of Qdrant's REST API that snapshots need, and its errors turned into
//! one line that says what to check. Qdrant answers errors as JSON
//! `{"status":{"error":…}}` (404, 403, 500), or as plain text (401, a missing
//! snapshot download).
//!
//! The async client runs on a runtime in the calling thread: reqwest's blocking
//! client hands every 8 KiB of a download across threads and manages 160 MB/s
//! here, the async one on our own thread about ten times that.

use anyhow::{bail, Context, Result};
use backup_common::{log, Secret};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

pub struct Qdrant {
    base: String,
    key: Option<Secret>,
    http: Client,
    rt: tokio::runtime::Runtime,
    component: &'static str,
}

/// A snapshot as Qdrant describes it on creation.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub name: String,
    pub size: u64,
    pub checksum: String,
}

/// Attempts for requests that may be repeated safely (GET, DELETE).
const ATTEMPTS: u32 = 4;

impl Qdrant {
    pub fn new(
        url: &str,
        key: Option<Secret>,
        timeout: Duration,
        component: &'static str,
    ) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the HTTP runtime")?;
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Qdrant {
            base: url.trim_end_matches('/').to_owned(),
            key,
            http,
            rt,
            component,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(k) => req.header("api-key", k.expose()),
            None => req,
        }
    }

    /// Sends an idempotent request, retrying with backoff while no answer came back
    /// (refused, reset, dropped connections).
    fn send_idempotent(&self, method: Method, path: &str) -> Result<Response> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            // `send()` arms the timeout timer, so it must run inside the runtime.
            let req = self.request(method.clone(), path);
            match self.rt.block_on(async { req.send().await }) {
                Ok(resp) => return self.check(resp, &method, path),
                Err(e) if attempt < ATTEMPTS && !e.is_timeout() => {
                    log::log(
                        self.component,
                        &format!("{method} {path}: {} — retrying in {delay:?}", describe(&e)),
                    );
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(self.transport_error(e, &method, path)),
            }
        }
    }

    fn send_once(&self, req: RequestBuilder, method: Method, path: &str) -> Result<Response> {
        match self.rt.block_on(async { req.send().await }) {
            Ok(resp) => self.check(resp, &method, path),
            Err(e) => Err(self.transport_error(e, &method, path)),
        }
    }

    fn transport_error(&self, e: reqwest::Error, method: &Method, path: &str) -> anyhow::Error {
        let hint = if e.is_timeout() {
            "raise --timeout if the snapshot is that large"
        } else {
            "check QDRANT_URL and that Qdrant is running"
        };
        anyhow::anyhow!(
            "{method} {}{path} failed: {} — {hint}",
            self.base,
            describe(&e)
        )
    }

    /// Maps a non-success answer to an error naming what to check.
    fn check(&self, resp: Response, method: &Method, path: &str) -> Result<Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = self.rt.block_on(resp.text()).unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["status"]["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if path.contains("/recover") => {
                "the server cannot read that location"
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "check QDRANT_API_KEY",
            StatusCode::NOT_FOUND => "check the collection name",
            s if s.is_server_error() => "see Qdrant's log (disk space, permissions)",
            _ => "check the request",
        };
        bail!("{method} {path}: Qdrant answered {status}: {message} — {hint}")
    }

    fn json(&self, resp: Response, what: &str) -> Result<Value> {
        let v: Value = self
            .rt
            .block_on(resp.json())
            .with_context(|| format!("{what}: Qdrant's answer is not JSON"))?;
        Ok(v["result"].clone())
    }

    pub fn version(&self) -> Option<String> {
        let resp = self.send_idempotent(Method::GET, "/").ok()?;
        let v: Value = self.rt.block_on(resp.json()).ok()?;
        v["version"].as_str().map(str::to_owned)
    }

    pub fn list_collections(&self) -> Result<Vec<String>> {
        let resp = self.send_idempotent(Method::GET, "/collections")?;
        let result = self.json(resp, "listing collections")?;
        let mut names: Vec<String> = result["collections"]
            .as_array()
            .context("listing collections: no collections array in Qdrant's answer")?
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Points count and vector configuration of a collection.
    pub fn collection_info(&self, name: &str) -> Result<(u64, Value)> {
        let resp = self.send_idempotent(Method::GET, &format!("/collections/{}", enc(name)))?;
        let result = self.json(resp, "reading collection info")?;
        let points = result["points_count"]
            .as_u64()
            .with_context(|| format!("collection {name}: no points_count in Qdrant's answer"))?;
        Ok((points, result["config"]["params"]["vectors"].clone()))
    }

    pub fn create_snapshot(&self, collection: Option<&str>) -> Result<SnapshotInfo> {
        let path = match collection {
            Some(c) => format!("/collections/{}/snapshots?wait=true", enc(c)),
            None => "/snapshots?wait=true".to_owned(),
        };
        let resp = self.send_once(self.request(Method::POST, &path), Method::POST, &path)?;
        let r = self.json(resp, "creating a snapshot")?;
        let field = |k: &str| r[k].clone();
        Ok(SnapshotInfo {
            name: field("name")
                .as_str()
                .context("snapshot without a name")?
                .to_owned(),
            size: field("size").as_u64().context("snapshot without a size")?,
            checksum: field("checksum")
                .as_str()
                .context("snapshot without a checksum")?
                .to_ascii_lowercase(),
        })
    }

    /// The streaming download of a snapshot, as a `Read`.
    pub fn download(&self, collection: Option<&str>, snapshot: &str) -> Result<Download<'_>> {
        let response = self.send_idempotent(Method::GET, &snapshot_path(collection, snapshot))?;
        Ok(Download {
            rt: &self.rt,
            response,
            chunk: bytes::Bytes::new(),
        })
    }

    /// Deletes a server-side snapshot. One that is already gone (Qdrant gives two
    /// snapshots made in the same second the same name) is a warning, not a failure.
    pub fn delete_snapshot(&self, collection: Option<&str>, snapshot: &str) {
        let path = format!("{}?wait=true", snapshot_path(collection, snapshot));
        match self.send_idempotent(Method::DELETE, &path) {
            Ok(_) => {}
            Err(e) => log::log(
                self.component,
                &format!(
                    "warning: could not delete snapshot {snapshot} on the server: {}",
                    backup_common::exit::one_line(&e)
                ),
            ),
        }
    }

    pub fn delete_collection(&self, name: &str) -> Result<()> {
        self.send_idempotent(Method::DELETE, &format!("/collections/{}", enc(name)))?;
        Ok(())
    }

    /// Uploads a snapshot file into `collection` (created or replaced), streamed from disk.
    pub fn upload_snapshot(&self, collection: &str, file: &Path) -> Result<()> {
        let path = format!(
            "/collections/{}/snapshots/upload?priority=snapshot&wait=true",
            enc(collection)
        );
        let opened = self
            .rt
            .block_on(tokio::fs::File::open(file))
            .with_context(|| format!("cannot open {}", file.display()))?;
        let len = std::fs::metadata(file)?.len();
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(opened), len)
            .file_name("snapshot")
            .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("snapshot", part);
        self.send_once(
            self.request(Method::POST, &path).multipart(form),
            Method::POST,
            &path,
        )?;
        Ok(())
    }
}

/// A response body read chunk by chunk as it arrives.
pub struct Download<'a> {
    rt: &'a tokio::runtime::Runtime,
    response: Response,
    chunk: bytes::Bytes,
}

impl std::io::Read for Download<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunk.is_empty() {
            match self.rt.block_on(self.response.chunk()) {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(describe(&e))),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

fn snapshot_path(collection: Option<&str>, snapshot: &str) -> String {
    match collection {
        Some(c) => format!("/collections/{}/snapshots/{}", enc(c), enc(snapshot)),
        None => format!("/snapshots/{}", enc(snapshot)),
    }
}

/// Percent-encodes a path segment (collection and snapshot names may hold
/// spaces or unicode).
fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn describe(e: &reqwest::Error) -> String {
    backup_common::exit::error_chain(e)
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::enc("my docs/ü"), "my%20docs%2F%C3%BC");
        assert_eq!(
            super::enc("documents-1-2026-11-25.snapshot"),
            "documents-1-2026-11-25.snapshot"
        );
    }
}
