//! S3 through rusty-s3 (SigV4 presigning and the XML of the answers) over the
//! shared HTTP plumbing (`backup_common::http`: bounded requests, retries).
//! Object requests go through `backup_common::s3::object_url`, so that every
//! key S3 allows is asked for as itself.

use crate::manifest::ObjectEntry;
use anyhow::{Context, Result};
use backup_common::http::{Body, Http, TimeoutArgs};
use backup_common::{log, Secret};
use reqwest::{Response, StatusCode};
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, Map, Method, S3Action, UrlStyle};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

const SIGNED_FOR: Duration = Duration::from_secs(3600);
/// Objects larger than this are uploaded in parts of this size.
pub const PART_SIZE: u64 = 16 * 1024 * 1024;

pub struct S3 {
    bucket: Bucket,
    creds: Credentials,
    http: Http,
    pub endpoint: String,
}

/// An object as a GET describes it.
pub struct Object<'a> {
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub body: Body<'a>,
}

impl S3 {
    pub fn new(
        endpoint: &str,
        region: &str,
        bucket: &str,
        user: &str,
        secret: &Secret,
        timeouts: &TimeoutArgs,
    ) -> Result<S3> {
        let url = endpoint.parse().map_err(|e| {
            backup_common::usage(format!("MINIO_ENDPOINT {endpoint:?} is not a URL: {e}"))
        })?;
        let bucket = Bucket::new(url, UrlStyle::Path, bucket.to_owned(), region.to_owned())
            .map_err(|e| backup_common::usage(format!("MINIO_ENDPOINT {endpoint:?}: {e}")))?;
        Ok(S3 {
            bucket,
            creds: Credentials::new(user, secret.expose()),
            http: Http::new(timeouts)?,
            endpoint: endpoint.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        self.bucket.name()
    }

    /// A signed URL for a request on one object (see `backup_common::s3`).
    fn object_url(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, &str)],
        headers: &Map<'_>,
    ) -> Result<url::Url> {
        Ok(backup_common::s3::object_url(
            &self.bucket,
            &self.creds,
            method,
            key,
            query,
            headers,
            SIGNED_FOR,
        )?)
    }

    /// Why a listed object answered 404: gone since the listing, or there and
    /// refused by the server (it cannot serve that key) — told apart by
    /// listing the key again.
    fn not_found(&self, key: &str, answer: anyhow::Error) -> anyhow::Error {
        match self.is_listed(key) {
            Ok(false) => anyhow::anyhow!(
                "GET {key:?}: 404 — the object was deleted while the backup ran; run it again"
            ),
            Ok(true) => anyhow::anyhow!(
                "GET {key:?}: 404, yet the bucket still lists it — the server cannot serve this \
                 key; check the server's log and its support for such keys, or rename the object"
            ),
            Err(e) => answer.context(format!("and listing {key:?} again failed: {e:#}")),
        }
    }

    /// Whether a listing of the bucket holds `key` now.
    fn is_listed(&self, key: &str) -> Result<bool> {
        let what = format!("listing {key:?} again");
        let (found, _) = self.list_page(Some(key), Some(1), None, &what)?;
        Ok(found.iter().any(|o| o.key == key))
    }

    /// Sends a request that may be repeated (GET, HEAD, DELETE, PUT of a whole
    /// body or of one part); transport errors are retried with backoff.
    fn send(&self, what: &str, make: impl Fn() -> reqwest::RequestBuilder) -> Result<Response> {
        self.http
            .send_idempotent(make, |e, delay| {
                log::log(
                    "minio",
                    &format!(
                        "{what}: {} — retrying in {delay:?}",
                        backup_common::http::describe(e)
                    ),
                )
            })
            .map_err(|e| transport(&self.http, &self.endpoint, what, &e))
    }

    /// Sends a POST once: starting a multipart upload twice leaves an orphan
    /// upload, completing it twice fails the second time.
    fn send_once(&self, what: &str, req: reqwest::RequestBuilder) -> Result<Response> {
        self.http
            .send(req)
            .map_err(|e| transport(&self.http, &self.endpoint, what, &e))
    }

    /// An answer's whole body as text (a stall ends it like any other).
    fn text(&self, resp: Response, what: &str) -> Result<String> {
        self.http
            .block_on(resp.text())
            .map_err(|e| transport(&self.http, &self.endpoint, what, &e))
    }

    /// An S3 error answer as one line that says what to check.
    fn fail(&self, resp: Response, what: &str) -> anyhow::Error {
        let status = resp.status();
        let body = self.http.block_on(resp.text()).unwrap_or_default();
        failure(status, &body, what)
    }

    /// Every object of the bucket, a page at a time (one page in memory),
    /// in key order: folder by folder (`/` as the delimiter), or, `flat`, in
    /// one listing of the whole bucket (see `Listing`).
    pub fn listing(&self, flat: bool) -> Listing<'_> {
        Listing {
            s3: self,
            what: format!("listing bucket {}", self.name()),
            flat,
            levels: vec![Level::new(String::new())],
            last: None,
            ahead: BTreeMap::new(),
        }
    }

    /// One page of ListObjectsV2 (optionally of keys starting with `prefix`,
    /// at most `max_keys`), keys as they are, and the next page's token.
    fn list_page(
        &self,
        prefix: Option<&str>,
        max_keys: Option<usize>,
        token: Option<String>,
        what: &str,
    ) -> Result<(Vec<Listed>, Option<String>)> {
        let (listed, _, next) = self.list_level(prefix, None, max_keys, token, what)?;
        Ok((listed, next))
    }

    /// One page of ListObjectsV2 with an optional delimiter: the objects, the
    /// folders (common prefixes) and the next page's token.
    fn list_level(
        &self,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: Option<usize>,
        token: Option<String>,
        what: &str,
    ) -> Result<Page> {
        let url = self.list_url(prefix, delimiter, max_keys, token);
        let resp = self.send(what, || self.http.client().get(url.clone()))?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, what));
        }
        parse_page(&self.text(resp, what)?, what)
    }

    /// The first page of a folder, fetched in the background while the
    /// folders before it are read (`Listing`); `finish_page` waits for it.
    fn list_ahead(&self, prefix: &str, what: &str) -> tokio::task::JoinHandle<Result<Page>> {
        let url = self.list_url(Some(prefix), Some("/"), None, None);
        let client = self.http.client().clone();
        let what = what.to_owned();
        let endpoint = self.endpoint.clone();
        let explain = Explainer::of(&self.http);
        self.http.spawn(async move {
            let resp = backup_common::http::retrying(|| client.get(url.clone()), |_, _| {})
                .await
                .map_err(|e| explain.transport(&endpoint, &what, &e))?;
            let status = resp.status();
            let text = resp
                .text()
                .await
                .map_err(|e| explain.transport(&endpoint, &what, &e))?;
            if !status.is_success() {
                return Err(failure(status, &text, &what));
            }
            parse_page(&text, &what)
        })
    }

    fn finish_page(&self, handle: tokio::task::JoinHandle<Result<Page>>) -> Result<Page> {
        self.http
            .block_on(handle)
            .context("a listing task failed")?
    }

    fn list_url(
        &self,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: Option<usize>,
        token: Option<String>,
    ) -> url::Url {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.creds));
        // Servers disagree on what `encoding-type=url` does to a `+` (AWS:
        // a space; s3s: a plus), so keys are taken as the XML carries them.
        action.query_mut().remove("encoding-type");
        if let Some(p) = prefix {
            action.with_prefix(p);
        }
        if let Some(d) = delimiter {
            action.with_delimiter(d);
        }
        if let Some(n) = max_keys {
            action.with_max_keys(n);
        }
        if let Some(t) = token {
            action.with_continuation_token(t);
        }
        action.sign(SIGNED_FOR)
    }

    pub fn get(&self, key: &str) -> Result<Object<'_>> {
        let url = self.object_url(Method::Get, key, &[], &Map::new())?;
        let what = format!("GET {key}");
        let resp = self.send(&what, || self.http.client().get(url.clone()))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(self.not_found(key, self.fail(resp, &what)));
        }
        if !resp.status().is_success() {
            return Err(self.fail(resp, &what));
        }
        let (content_type, metadata) = object_headers(resp.headers());
        Ok(Object {
            content_type,
            metadata,
            body: self.http.body(resp),
        })
    }

    /// Starts fetching a small object whole, concurrently with whatever the
    /// caller does next on this runtime; transport errors are retried.
    pub fn prefetch(&self, key: &str, size: u64) -> tokio::task::JoinHandle<Result<Prefetched>> {
        let url = self.object_url(Method::Get, key, &[], &Map::new());
        let client = self.http.client().clone();
        let what = format!("GET {key}");
        let key = key.to_owned();
        let endpoint = self.endpoint.clone();
        let explain = Explainer::of(&self.http);
        self.http.spawn(async move {
            let url = url?;
            let resp = backup_common::http::retrying(|| client.get(url.clone()), |_, _| {})
                .await
                .map_err(|e| explain.transport(&endpoint, &what, &e))?;
            let status = resp.status();
            if !status.is_success() {
                let body = resp.text().await.unwrap_or_default();
                let answer = failure(status, &body, &what);
                if status == StatusCode::NOT_FOUND {
                    return Err(Missing { key, answer }.into());
                }
                return Err(answer);
            }
            let (content_type, metadata) = object_headers(resp.headers());
            // Collected into one buffer of the listed size: no doubling as it grows.
            let mut resp = resp;
            let mut data = Vec::with_capacity(size as usize);
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| explain.transport(&endpoint, &format!("{what} broke off"), &e))?
            {
                data.extend_from_slice(&chunk);
            }
            Ok(Prefetched {
                content_type,
                metadata,
                data: data.into(),
            })
        })
    }

    /// Uploads an object held whole in one PUT, in the background (a
    /// restore keeps several in flight: `finish_put` waits for one) — only
    /// once its bytes are what the manifest records, checked here.
    pub fn put_in_background(
        &self,
        key: &str,
        data: Vec<u8>,
        object: &ObjectEntry,
    ) -> Result<tokio::task::JoinHandle<Result<()>>> {
        let actual = hex::encode(Sha256::digest(&data));
        if data.len() as u64 != object.size || actual != object.sha256 {
            anyhow::bail!(
                "object {key} is {} bytes with sha256 {actual} in the archive, the manifest \
                 records {} bytes with {}; not restored",
                data.len(),
                object.size,
                object.sha256
            );
        }
        let mut signed = Map::new();
        let mut headers = reqwest::header::HeaderMap::new();
        let mut header = |name: String, value: &str| -> Result<()> {
            headers.insert(
                reqwest::header::HeaderName::try_from(name.as_str())?,
                reqwest::header::HeaderValue::from_str(value)?,
            );
            signed.insert(name, value.to_owned());
            Ok(())
        };
        if let Some(ct) = &object.content_type {
            header("content-type".into(), ct)?;
        }
        for (k, v) in &object.metadata {
            header(format!("x-amz-meta-{k}"), v)?;
        }
        let url = self.object_url(Method::Put, key, &[], &signed)?;
        let client = self.http.client().clone();
        let what = format!("PUT {key}");
        let endpoint = self.endpoint.clone();
        let explain = Explainer::of(&self.http);
        let data = bytes::Bytes::from(data);
        Ok(self.http.spawn(async move {
            let resp = backup_common::http::retrying(
                || {
                    client
                        .put(url.clone())
                        .headers(headers.clone())
                        .body(data.clone())
                },
                |_, _| {},
            )
            .await
            .map_err(|e| explain.transport(&endpoint, &what, &e))?;
            let status = resp.status();
            if !status.is_success() {
                let body = resp.text().await.unwrap_or_default();
                return Err(failure(status, &body, &what));
            }
            Ok(())
        }))
    }

    /// Waits for an upload `put_in_background` started.
    pub fn finish_put(&self, upload: tokio::task::JoinHandle<Result<()>>) -> Result<()> {
        self.http
            .block_on(upload)
            .context("an upload task failed")?
    }

    /// Waits for a prefetch.
    pub fn finish(
        &self,
        handle: tokio::task::JoinHandle<Result<Prefetched>>,
    ) -> Result<Prefetched> {
        let done = self
            .http
            .block_on(handle)
            .context("a download task failed")?;
        done.map_err(|e| match e.downcast::<Missing>() {
            Ok(Missing { key, answer }) => self.not_found(&key, answer),
            Err(e) => e,
        })
    }

    pub fn bucket_exists(&self) -> Result<bool> {
        let url = self.bucket.head_bucket(Some(&self.creds)).sign(SIGNED_FOR);
        let resp = self.send("checking the bucket", || {
            self.http.client().head(url.clone())
        })?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.fail(resp, "checking the bucket")),
        }
    }

    pub fn create_bucket(&self) -> Result<()> {
        let url = self.bucket.create_bucket(&self.creds).sign(SIGNED_FOR);
        let resp = self.send("creating the bucket", || {
            self.http.client().put(url.clone())
        })?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, "creating the bucket"));
        }
        Ok(())
    }

    /// Deletes the (empty) bucket.
    pub fn delete_bucket(&self) -> Result<()> {
        let url = self.bucket.delete_bucket(&self.creds).sign(SIGNED_FOR);
        let resp = self.send("deleting the bucket", || {
            self.http.client().delete(url.clone())
        })?;
        if !resp.status().is_success() && resp.status() != StatusCode::NOT_FOUND {
            return Err(self.fail(resp, "deleting the bucket"));
        }
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        let url = self.object_url(Method::Delete, key, &[], &Map::new())?;
        let resp = self.send(&format!("DELETE {key}"), || {
            self.http.client().delete(url.clone())
        })?;
        if !resp.status().is_success() && resp.status() != StatusCode::NOT_FOUND {
            return Err(self.fail(resp, &format!("DELETE {key}")));
        }
        Ok(())
    }

    /// Uploads an object of `size` bytes read from `source` — straight from
    /// the archive, nothing staged on disk — as `key` with its content type
    /// and user metadata; in parts when it is larger than `PART_SIZE`. What is
    /// read is hashed on the way, and content that is not what the manifest
    /// records is never stored: a whole PUT is sent only after its bytes
    /// matched, a multipart upload is completed only after every part did
    /// (and aborted otherwise, as on any failure of its parts).
    pub fn put_object(
        &self,
        key: &str,
        source: &mut dyn Read,
        size: u64,
        object: &ObjectEntry,
    ) -> Result<()> {
        let content_type = object.content_type.as_deref();
        let meta = &object.metadata;
        let damaged = |actual: &str, read: u64| {
            anyhow::anyhow!(
                "object {key} is {read} bytes with sha256 {actual} in the archive, the manifest \
                 records {size} bytes with {}; not restored",
                object.sha256
            )
        };
        let mut headers = Map::new();
        if let Some(ct) = content_type {
            headers.insert("content-type", ct.to_owned());
        }
        for (k, v) in meta {
            headers.insert(format!("x-amz-meta-{k}"), v.clone());
        }
        let with_headers = |req: reqwest::RequestBuilder| {
            let mut req = req;
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            for (k, v) in meta {
                req = req.header(format!("x-amz-meta-{k}"), v);
            }
            req
        };
        let read_part = |source: &mut dyn Read, limit: u64| -> Result<Vec<u8>> {
            let mut buf = Vec::with_capacity(limit.min(PART_SIZE) as usize);
            source
                .take(limit)
                .read_to_end(&mut buf)
                .with_context(|| format!("cannot read {key} from the archive"))?;
            Ok(buf)
        };
        if size <= PART_SIZE {
            let data = read_part(source, size)?;
            let upload = self.put_in_background(key, data, object)?;
            return self.finish_put(upload);
        }
        let what = format!("multipart upload of {key}");
        let url = self.object_url(Method::Post, key, &[("uploads", "1")], &headers)?;
        let resp = self.send_once(&what, with_headers(self.http.client().post(url)))?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, &what));
        }
        let text = self.text(resp, &what)?;
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .with_context(|| format!("{what}: malformed answer"))?;
        let upload_id = created.upload_id().to_owned();
        let parts = (|| -> Result<Vec<String>> {
            let mut etags = Vec::new();
            let mut hasher = Sha256::new();
            let mut read = 0u64;
            let mut part_number: u16 = 1;
            while read < size {
                let buf = read_part(source, (size - read).min(PART_SIZE))?;
                if buf.is_empty() {
                    break;
                }
                read += buf.len() as u64;
                hasher.update(&buf);
                let part = part_number.to_string();
                let url = self.object_url(
                    Method::Put,
                    key,
                    &[("partNumber", &part), ("uploadId", &upload_id)],
                    &Map::new(),
                )?;
                let resp = self.send(&what, || {
                    self.http.client().put(url.clone()).body(buf.clone())
                })?;
                if !resp.status().is_success() {
                    return Err(self.fail(resp, &what));
                }
                let etag = resp
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .context("a part upload returned no ETag")?
                    .to_owned();
                etags.push(etag);
                part_number += 1;
            }
            let actual = hex::encode(hasher.finalize());
            if read != size || actual != object.sha256 {
                return Err(damaged(&actual, read));
            }
            Ok(etags)
        })();
        let etags = match parts {
            Ok(etags) => etags,
            Err(e) => {
                // Nothing half-uploaded stays on the server.
                let abort = self.object_url(
                    Method::Delete,
                    key,
                    &[("uploadId", &upload_id)],
                    &Map::new(),
                )?;
                let _ = self.send(&what, || self.http.client().delete(abort.clone()));
                return Err(e);
            }
        };
        // rusty-s3 writes the completion's XML; the URL is ours, as above.
        let body = self
            .bucket
            .complete_multipart_upload(
                Some(&self.creds),
                key,
                &upload_id,
                etags.iter().map(String::as_str),
            )
            .body();
        let url = self.object_url(Method::Post, key, &[("uploadId", &upload_id)], &Map::new())?;
        let resp = self.send_once(&what, self.http.client().post(url).body(body))?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, &what));
        }
        Ok(())
    }
}

/// Every bucket the credentials can list (ListBuckets), by name, for
/// `MINIO_BUCKET=all`.
pub fn list_buckets(
    endpoint: &str,
    region: &str,
    user: &str,
    secret: &Secret,
    timeouts: &TimeoutArgs,
) -> Result<Vec<String>> {
    let what = "listing the buckets (MINIO_BUCKET=all)";
    let base: url::Url = endpoint.parse().map_err(|e| {
        backup_common::usage(format!("MINIO_ENDPOINT {endpoint:?} is not a URL: {e}"))
    })?;
    let creds = Credentials::new(user, secret.expose());
    let url = backup_common::s3::list_buckets_url(&base, region, &creds, SIGNED_FOR)
        .map_err(|e| anyhow::anyhow!("{what}: cannot sign the request: {e}"))?;
    let http = Http::new(timeouts)?;
    let resp = http
        .send_idempotent(|| http.client().get(url.clone()), |_, _| {})
        .map_err(|e| transport(&http, endpoint, what, &e))?;
    let status = resp.status();
    let text = http
        .block_on(resp.text())
        .map_err(|e| transport(&http, endpoint, what, &e))?;
    if !status.is_success() {
        return Err(failure(status, &text, what));
    }
    let answer: BucketList =
        quick_xml::de::from_str(&text).with_context(|| format!("{what}: malformed answer"))?;
    // Servers list in their own order (creation, say): by name, as a run's
    // series and a report's come.
    let mut names: Vec<String> = answer.buckets.bucket.into_iter().map(|b| b.name).collect();
    names.sort();
    Ok(names)
}

/// ListBuckets' answer: `<ListAllMyBucketsResult><Buckets><Bucket><Name>…`.
#[derive(Debug, Deserialize)]
struct BucketList {
    #[serde(rename = "Buckets", default)]
    buckets: Buckets,
}

#[derive(Debug, Default, Deserialize)]
struct Buckets {
    #[serde(rename = "Bucket", default)]
    bucket: Vec<BucketName>,
}

#[derive(Debug, Deserialize)]
struct BucketName {
    #[serde(rename = "Name")]
    name: String,
}

/// A prefetch answered 404; `S3::finish` finds out why (`S3::not_found`).
#[derive(Debug)]
struct Missing {
    key: String,
    answer: anyhow::Error,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.answer)
    }
}

impl std::error::Error for Missing {}

/// One page of ListObjectsV2. Our own shape rather than rusty-s3's: servers
/// differ in what they include (s3s-fs sends no ETag). A server that encodes
/// keys anyway says so in EncodingType; they are then percent-decoded.
#[derive(Debug, Deserialize)]
struct ListPage {
    #[serde(rename = "Contents", default)]
    contents: Vec<Listed>,
    #[serde(rename = "CommonPrefixes", default)]
    common_prefixes: Vec<CommonPrefix>,
    #[serde(rename = "NextContinuationToken")]
    next_continuation_token: Option<String>,
    #[serde(rename = "EncodingType")]
    encoding_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CommonPrefix {
    #[serde(rename = "Prefix")]
    prefix: String,
}

/// One page of a listing: objects, folders (common prefixes), the next
/// page's token.
type Page = (Vec<Listed>, Vec<String>, Option<String>);

fn parse_page(text: &str, what: &str) -> Result<Page> {
    let page: ListPage =
        quick_xml::de::from_str(text).with_context(|| format!("{what}: malformed answer"))?;
    let url_encoded = page.encoding_type.as_deref() == Some("url");
    // Percent escapes of `encoding-type=url`; a `+` is kept (see `list_url`).
    let decoded = |text: String| {
        if url_encoded {
            percent_encoding::percent_decode_str(&text)
                .decode_utf8_lossy()
                .into_owned()
        } else {
            text
        }
    };
    let listed = page
        .contents
        .into_iter()
        .map(|mut o| {
            o.key = decoded(o.key);
            o
        })
        .collect();
    let folders = page
        .common_prefixes
        .into_iter()
        .map(|p| decoded(p.prefix))
        .collect();
    Ok((listed, folders, page.next_continuation_token))
}

/// How many folders ahead of the one being read have their first page
/// fetched in the background: a folder costs a request even when it holds a
/// few keys, so a bucket of many folders waits on them one by one otherwise.
const FOLDERS_AHEAD: usize = 16;

/// See [`S3::listing`]. S3 lists keys in UTF-8 binary order; what reads a
/// listing side by side with a manifest relies on that, so it is checked.
///
/// Folder by folder is how rclone lists by default, and for the same
/// reason: a server that keeps objects as files (s3s-fs; MinIO on a file
/// system) walks only one folder per request, where a flat listing may walk
/// the whole bucket for every page of 1,000 keys. A folder's objects and
/// sub-folders come in one sorted list; a sub-folder's keys are exactly
/// those between it and the next entry, so descending into each folder where
/// it sorts yields the bucket in key order. A flat listing (`--fast-list`,
/// rclone's name) takes a request per 1,000 keys however they are arranged:
/// better on a server with a sorted index (AWS, Garage) and many folders.
pub struct Listing<'a> {
    s3: &'a S3,
    what: String,
    flat: bool,
    /// The folders being listed, outermost first.
    levels: Vec<Level>,
    last: Option<String>,
    /// First pages of folders still to come, by prefix (see `FOLDERS_AHEAD`).
    ahead: BTreeMap<String, tokio::task::JoinHandle<Result<Page>>>,
}

struct Level {
    prefix: String,
    /// What this folder's pages listed and is not yet handed out.
    entries: std::collections::VecDeque<Entry>,
    token: Option<String>,
    more: bool,
}

enum Entry {
    Object(Listed),
    Folder(String),
}

impl Entry {
    fn key(&self) -> &str {
        match self {
            Entry::Object(o) => &o.key,
            Entry::Folder(p) => p,
        }
    }
}

impl Level {
    fn new(prefix: String) -> Level {
        Level {
            prefix,
            entries: Default::default(),
            token: None,
            more: true,
        }
    }
}

impl Listing<'_> {
    fn fail(&mut self, e: anyhow::Error) -> Option<Result<Listed>> {
        self.levels.clear();
        Some(Err(e))
    }

    /// Starts fetching the first pages of the next folders to be read.
    fn look_ahead(&mut self) {
        let wanted: Vec<String> = self
            .levels
            .iter()
            .rev()
            .flat_map(|level| level.entries.iter())
            .filter_map(|e| match e {
                Entry::Folder(p) => Some(p),
                Entry::Object(_) => None,
            })
            .take(FOLDERS_AHEAD)
            .filter(|p| !self.ahead.contains_key(*p))
            .cloned()
            .collect();
        for prefix in wanted {
            if self.ahead.len() >= FOLDERS_AHEAD {
                break;
            }
            let task = self.s3.list_ahead(&prefix, &self.what);
            self.ahead.insert(prefix, task);
        }
    }
}

impl Iterator for Listing<'_> {
    type Item = Result<Listed>;

    fn next(&mut self) -> Option<Result<Listed>> {
        loop {
            let level = self.levels.last_mut()?;
            match level.entries.pop_front() {
                Some(Entry::Object(listed)) => {
                    if self.last.as_ref().is_some_and(|l| *l >= listed.key) {
                        let e = anyhow::anyhow!(
                            "{}: the server listed {:?} after {:?}, not in key order as S3 lists",
                            self.what,
                            listed.key,
                            self.last.as_deref().unwrap_or_default()
                        );
                        return self.fail(e);
                    }
                    self.last = Some(listed.key.clone());
                    return Some(Ok(listed));
                }
                Some(Entry::Folder(prefix)) => {
                    // A folder is always deeper than the one that lists it;
                    // anything else would be listed again and again.
                    if prefix.len() <= level.prefix.len() || !prefix.starts_with(&level.prefix) {
                        let e = anyhow::anyhow!(
                            "{}: the server listed folder {prefix:?} inside {:?}",
                            self.what,
                            level.prefix
                        );
                        return self.fail(e);
                    }
                    self.levels.push(Level::new(prefix));
                }
                None if !level.more => {
                    self.levels.pop();
                }
                None => {
                    let prefix = (!level.prefix.is_empty()).then_some(level.prefix.as_str());
                    let delimiter = (!self.flat).then_some("/");
                    let page = match self.ahead.remove(&level.prefix) {
                        Some(task) if level.token.is_none() => self.s3.finish_page(task),
                        _ => self.s3.list_level(
                            prefix,
                            delimiter,
                            None,
                            level.token.take(),
                            &self.what,
                        ),
                    };
                    let (objects, folders, next) = match page {
                        Ok(page) => page,
                        Err(e) => return self.fail(e),
                    };
                    level.more = next.is_some();
                    level.token = next;
                    // Each list is sorted; merged, they are the folder's order.
                    let mut objects = objects.into_iter().map(Entry::Object).peekable();
                    let mut folders = folders.into_iter().map(Entry::Folder).peekable();
                    while let Some(next) = match (objects.peek(), folders.peek()) {
                        (Some(o), Some(f)) if f.key() < o.key() => folders.next(),
                        (Some(_), _) => objects.next(),
                        (None, _) => folders.next(),
                    } {
                        level.entries.push_back(next);
                    }
                    self.look_ahead();
                }
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "ETag", default)]
    pub etag: Option<String>,
    #[serde(rename = "LastModified", default)]
    pub last_modified: Option<String>,
    #[serde(rename = "Size")]
    pub size: u64,
}

/// An S3 error answer (status and XML body) as one line that says what to check.
fn failure(status: StatusCode, body: &str, what: &str) -> anyhow::Error {
    let answer: ErrorAnswer = quick_xml::de::from_str(body).unwrap_or_default();
    let (code, message) = (answer.code, answer.message);
    let hint = match (status, code.as_str()) {
        (_, "NoSuchBucket") => "check MINIO_BUCKET",
        (_, "NoSuchKey") => "the object was deleted while the backup ran; run it again",
        (StatusCode::FORBIDDEN, _) | (_, "SignatureDoesNotMatch") | (_, "InvalidAccessKeyId") => {
            "check MINIO_ROOT_USER and MINIO_ROOT_PASSWORD"
        }
        _ => "see the server's log",
    };
    anyhow::anyhow!("{what}: the server answered {status} {code} {message} — {hint}")
}

fn object_headers(
    headers: &reqwest::header::HeaderMap,
) -> (Option<String>, BTreeMap<String, String>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let metadata = headers
        .iter()
        .filter_map(|(name, value)| {
            let n = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((n.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    (content_type, metadata)
}

/// A small object fetched whole, ahead of its turn.
pub struct Prefetched {
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub data: bytes::Bytes,
}

/// An S3 error answer: `<Error><Code>…</Code><Message>…</Message>…</Error>`.
#[derive(Debug, Default, Deserialize)]
struct ErrorAnswer {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// A transport failure as one line that says what to check: a stall is the
/// server's doing, anything else the endpoint's. Never with the URL: a presigned
/// S3 URL carries a signature that works as a credential until it expires.
fn transport(http: &Http, endpoint: &str, what: &str, e: &reqwest::Error) -> anyhow::Error {
    Explainer::of(http).transport(endpoint, what, e)
}

/// What `transport` needs, detached from the client for use in spawned tasks.
#[derive(Clone, Copy)]
struct Explainer {
    stall: u64,
}

impl Explainer {
    fn of(http: &Http) -> Explainer {
        Explainer {
            stall: http.timeouts().stall_timeout,
        }
    }

    fn transport(self, endpoint: &str, what: &str, e: &reqwest::Error) -> anyhow::Error {
        let text = backup_common::http::describe(e);
        if e.is_timeout() {
            anyhow::anyhow!(
                "{what}: {endpoint} stopped answering (no data for {} s): {text} — check the \
                 S3 server, or raise --stall-timeout / BACKUP_STALL_TIMEOUT",
                self.stall
            )
        } else {
            anyhow::anyhow!(
                "{what}: cannot reach {endpoint}: {text} — check MINIO_ENDPOINT and that the server is running"
            )
        }
    }
}
