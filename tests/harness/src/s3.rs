//! A real S3 server for the tests: s3s-fs (it checks SigV4 signatures), as
//! scripts/test.sh installs it (or `$S3S_FS_BIN`), on loopback with its own
//! keys and a temp folder, plus a small client to fill and inspect buckets.

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    dir: tempfile::TempDir,
    process: Option<Child>,
}

pub fn bin() -> PathBuf {
    if let Some(b) = std::env::var_os("S3S_FS_BIN") {
        return b.into();
    }
    let b = PathBuf::from("/opt/backup-kit/s3s-fs/bin/s3s-fs");
    assert!(
        b.exists(),
        "s3s-fs is not installed at {}: run scripts/test.sh or set S3S_FS_BIN",
        b.display()
    );
    b
}

const SIGNED_FOR: Duration = Duration::from_secs(600);

impl S3Server {
    pub fn start() -> S3Server {
        let dir = tempfile::Builder::new().prefix("bk-s3-").tempdir().unwrap();
        let port = crate::free_port();
        let access_key = "bk-test-access".to_owned();
        let secret_key = format!("bk-test-secret-{port}");
        let process = Command::new(bin())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
            dir,
            process: Some(process),
        }
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
            "us-east-1",
        )
        .unwrap()
    }

    fn creds(&self) -> Credentials {
        Credentials::new(&self.access_key, &self.secret_key)
    }

    pub fn create_bucket(&self, name: &str) {
        let url = self
            .bucket(name)
            .create_bucket(&self.creds())
            .sign(SIGNED_FOR);
        let r = reqwest::blocking::Client::new().put(url).send().unwrap();
        assert!(
            r.status().is_success(),
            "create bucket {name}: {}",
            r.status()
        );
    }

    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        content_type: &str,
        meta: &[(&str, &str)],
    ) {
        let b = self.bucket(bucket);
        let creds = self.creds();
        let mut action = b.put_object(Some(&creds), key);
        action
            .headers_mut()
            .insert("content-type", content_type.to_owned());
        for (k, v) in meta {
            action
                .headers_mut()
                .insert(format!("x-amz-meta-{k}"), v.to_string());
        }
        let url = action.sign(SIGNED_FOR);
        let mut req = reqwest::blocking::Client::new()
            .put(url)
            .header("content-type", content_type)
            .body(data.to_vec());
        for (k, v) in meta {
            req = req.header(format!("x-amz-meta-{k}"), *v);
        }
        let r = req.send().unwrap();
        assert!(
            r.status().is_success(),
            "put {key}: {} {}",
            r.status(),
            r.text().unwrap_or_default()
        );
    }

    /// An object's bytes, content type and user metadata; `None` if absent.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Option<(Vec<u8>, String, BTreeMap<String, String>)> {
        let url = self
            .bucket(bucket)
            .get_object(Some(&self.creds()), key)
            .sign(SIGNED_FOR);
        let r = reqwest::blocking::Client::new().get(url).send().unwrap();
        if r.status().as_u16() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "get {key}: {}", r.status());
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
        let url = self
            .bucket(bucket)
            .delete_object(Some(&self.creds()), key)
            .sign(SIGNED_FOR);
        let r = reqwest::blocking::Client::new().delete(url).send().unwrap();
        assert!(r.status().is_success(), "delete {key}: {}", r.status());
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
