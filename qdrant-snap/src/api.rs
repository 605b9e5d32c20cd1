//! The part of Qdrant's REST API that snapshots need, and its errors turned into
//! one line that says what to check. Qdrant answers errors as JSON
//! `{"status":{"error":…}}` (404, 403, 500), or as plain text (401, a missing
//! snapshot download).
//!
//! Requests go through `backup_common::http`: reading and downloading are
//! bounded by the stall timeout; creating and uploading a snapshot, where Qdrant
//! legitimately says nothing until it is done, by the overall `--timeout`.

use anyhow::{bail, Context, Result};
use backup_common::http::{Body, Http, TimeoutArgs};
use backup_common::{log, Secret};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;

pub struct Qdrant {
    base: String,
    key: Option<Secret>,
    http: Http,
    component: &'static str,
}

/// A snapshot as Qdrant describes it on creation.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub name: String,
    pub size: u64,
    pub checksum: String,
}

impl Qdrant {
    pub fn new(
        url: &str,
        key: Option<Secret>,
        timeouts: &TimeoutArgs,
        component: &'static str,
    ) -> Result<Self> {
        Ok(Qdrant {
            base: url.trim_end_matches('/').to_owned(),
            key,
            http: Http::new(timeouts)?,
            component,
        })
    }

    fn request_with(&self, client: &Client, method: Method, path: &str) -> RequestBuilder {
        let req = client.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(k) => req.header("api-key", k.expose()),
            None => req,
        }
    }

    /// A request bounded by the stall timeout.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_with(self.http.client(), method, path)
    }

    /// A request that waits on Qdrant's work, bounded by the overall timeout.
    fn waiting_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_with(self.http.waiting(), method, path)
    }

    /// Sends an idempotent request, retrying with backoff while no answer came back
    /// (refused, reset, dropped connections).
    fn send_idempotent(&self, method: Method, path: &str) -> Result<Response> {
        let resp = self
            .http
            .send_idempotent(
                || self.request(method.clone(), path),
                |e, delay| {
                    log::log(
                        self.component,
                        &format!("{method} {path}: {} — retrying in {delay:?}", describe(e)),
                    )
                },
            )
            .map_err(|e| {
                self.transport_error(&e, &format!("{method} {}{path}", self.base), false)
            })?;
        self.check(resp, &method, path)
    }

    /// Sends a request that waits on Qdrant's work, once.
    fn send_waiting(&self, req: RequestBuilder, method: Method, path: &str) -> Result<Response> {
        match self.http.send(req) {
            Ok(resp) => self.check(resp, &method, path),
            Err(e) => Err(self.transport_error(&e, &format!("{method} {}{path}", self.base), true)),
        }
    }

    /// One line that says what to check; the "raise --timeout" hint only where
    /// the overall timeout is what ran out.
    fn transport_error(&self, e: &reqwest::Error, what: &str, waiting: bool) -> anyhow::Error {
        let t = self.http.timeouts();
        let hint = match (e.is_timeout(), waiting) {
            (true, true) => format!(
                "Qdrant did not finish within --timeout {} s; raise --timeout if the snapshot is that large",
                t.timeout
            ),
            (true, false) => format!(
                "Qdrant stopped answering (no data for {} s); check Qdrant, or raise --stall-timeout / BACKUP_STALL_TIMEOUT",
                t.stall_timeout
            ),
            _ => "check QDRANT_URL and that Qdrant is running".to_owned(),
        };
        anyhow::anyhow!("{what} failed: {} — {hint}", describe(e))
    }

    /// Maps a non-success answer to an error naming what to check.
    fn check(&self, resp: Response, method: &Method, path: &str) -> Result<Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = self.http.block_on(resp.text()).unwrap_or_default();
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

    /// The `result` of an answer; a body that stalls or breaks off says so
    /// rather than "not JSON".
    /// `waiting`: the answer to a request that waits on Qdrant's work, whose
    /// client is bounded by the overall timeout, not the stall timeout.
    fn json(&self, resp: Response, what: &str, waiting: bool) -> Result<Value> {
        let text = self
            .http
            .block_on(resp.text())
            .map_err(|e| self.transport_error(&e, &format!("{what} at {}", self.base), waiting))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{what}: Qdrant's answer is not JSON"))?;
        Ok(v["result"].clone())
    }

    pub fn version(&self) -> Option<String> {
        let resp = self.send_idempotent(Method::GET, "/").ok()?;
        let v: Value = self.http.block_on(resp.json()).ok()?;
        v["version"].as_str().map(str::to_owned)
    }

    pub fn list_collections(&self) -> Result<Vec<String>> {
        let resp = self.send_idempotent(Method::GET, "/collections")?;
        let result = self.json(resp, "listing collections", false)?;
        let mut names: Vec<String> = result["collections"]
            .as_array()
            .context("listing collections: no collections array in Qdrant's answer")?
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every alias, as (alias, the collection it points to), sorted.
    pub fn list_aliases(&self) -> Result<Vec<(String, String)>> {
        let resp = self.send_idempotent(Method::GET, "/aliases")?;
        let result = self.json(resp, "listing aliases", false)?;
        let mut aliases: Vec<(String, String)> = result["aliases"]
            .as_array()
            .context("listing aliases: no aliases array in Qdrant's answer")?
            .iter()
            .filter_map(|a| {
                Some((
                    a["alias_name"].as_str()?.to_owned(),
                    a["collection_name"].as_str()?.to_owned(),
                ))
            })
            .collect();
        aliases.sort();
        Ok(aliases)
    }

    /// Points `alias` at `collection`: created, or re-pointed if the name is
    /// taken (Qdrant's own `create_alias` does that). Sent once: it is one
    /// small change that a retry would repeat harmlessly, but the answer says
    /// whether it happened.
    pub fn point_alias(&self, alias: &str, collection: &str) -> Result<()> {
        let path = "/collections/aliases";
        let body = serde_json::json!({"actions": [
            {"create_alias": {"collection_name": collection, "alias_name": alias}}
        ]});
        let resp = self.send_waiting(
            self.request(Method::POST, path).json(&body),
            Method::POST,
            path,
        )?;
        self.json(resp, "pointing an alias", false)?;
        Ok(())
    }

    /// Points count and vector configuration of a collection.
    pub fn collection_info(&self, name: &str) -> Result<(u64, Value)> {
        let resp = self.send_idempotent(Method::GET, &format!("/collections/{}", enc(name)))?;
        let result = self.json(resp, "reading collection info", false)?;
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
        let resp = self.send_waiting(
            self.waiting_request(Method::POST, &path),
            Method::POST,
            &path,
        )?;
        let r = self.json(resp, "creating a snapshot", true)?;
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
    pub fn download(&self, collection: Option<&str>, snapshot: &str) -> Result<Body<'_>> {
        let response = self.send_idempotent(Method::GET, &snapshot_path(collection, snapshot))?;
        Ok(self.http.body(response))
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

    /// Uploads a snapshot into `collection` (created or replaced), streamed
    /// from `source` as it is read — straight from the archive, nothing staged
    /// on disk. What is sent is hashed on the way: content that is not `len`
    /// bytes with `sha256` ends the upload with an error before its last byte
    /// (the multipart body never closes), so Qdrant never gets a complete
    /// snapshot to load.
    pub fn upload_snapshot(
        &self,
        collection: &str,
        source: &mut dyn Read,
        len: u64,
        sha256: &str,
    ) -> Result<()> {
        let path = format!(
            "/collections/{}/snapshots/upload?priority=snapshot&wait=true",
            enc(collection)
        );
        // The request runs in the runtime; this thread feeds its body through
        // a small channel (each send drives the runtime until there is room),
        // so memory holds a few chunks, whatever the snapshot's size.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
                .file_name("snapshot")
                .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("snapshot", part);
        let request = self.waiting_request(Method::POST, &path).multipart(form);
        let sending = self.http.spawn(async move { request.send().await });
        let fed = feed(&self.http, source, &tx, len, sha256);
        if let Err(why) = &fed {
            // The body ends in an error: the request is abandoned mid-body.
            let _ = self
                .http
                .block_on(tx.send(Err(std::io::Error::other(why.clone()))));
        }
        drop(tx);
        let answer = self
            .http
            .block_on(sending)
            .context("the upload was cut short")?;
        if let Err(why) = fed {
            bail!("{why}; upload abandoned, Qdrant got no complete snapshot");
        }
        match answer {
            Ok(resp) => self.check(resp, &Method::POST, &path).map(drop),
            Err(e) => Err(self.transport_error(&e, &format!("POST {}{path}", self.base), true)),
        }
    }
}

/// Sends `source` into the upload chunk by chunk, hashing it; an error when
/// it is not `len` bytes with `sha256`. A send that fails means the request
/// already ended (its answer says why).
fn feed(
    http: &backup_common::http::Http,
    source: &mut dyn Read,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    len: u64,
    sha256: &str,
) -> Result<(), String> {
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    loop {
        let mut buf = vec![0u8; 256 * 1024];
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read the snapshot from the archive: {e}")),
        };
        buf.truncate(n);
        hasher.update(&buf);
        sent += n as u64;
        if http.block_on(tx.send(Ok(bytes::Bytes::from(buf)))).is_err() {
            return Ok(());
        }
    }
    let actual = hex::encode(hasher.finalize());
    if sent != len || actual != sha256 {
        return Err(format!(
            "the snapshot is {sent} bytes with sha256 {actual}; the manifest records {len} bytes \
             with {sha256} — the archive is damaged"
        ));
    }
    Ok(())
}

fn snapshot_path(collection: Option<&str>, snapshot: &str) -> String {
    match collection {
        Some(c) => format!("/collections/{}/snapshots/{}", enc(c), enc(snapshot)),
        None => format!("/snapshots/{}", enc(snapshot)),
    }
}

/// Percent-encodes a path segment (collection and snapshot names may hold
/// spaces or unicode): everything but RFC 3986's unreserved characters.
fn enc(segment: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

use backup_common::http::describe;

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
