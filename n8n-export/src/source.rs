//! The two ways into n8n: its public REST API, and its CLI (`N8N_CLI`, e.g.
//! `docker exec n8n n8n`).

use anyhow::{bail, Context, Result};
use backup_common::http::{Http, TimeoutArgs};
use backup_common::{cleanup, Secret};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Api {
    base: String,
    key: Secret,
    http: Http,
}

/// Workflows per page; the API's maximum.
const PAGE: usize = 250;

impl Api {
    pub fn new(url: &str, key: Secret, timeouts: &TimeoutArgs) -> Result<Api> {
        Ok(Api {
            base: url.trim_end_matches('/').to_owned(),
            key,
            http: Http::new(timeouts)?,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .client()
            .request(method, format!("{}/api/v1{path}", self.base))
            .header("X-N8N-API-KEY", self.key.expose())
            .header("accept", "application/json")
    }

    /// Sends a write once: creating a workflow is not safe to repeat.
    fn send(&self, req: RequestBuilder, what: &str) -> Result<Response> {
        let resp = self.http.send(req).map_err(|e| self.transport(&e, what))?;
        self.check(resp, what)
    }

    /// Sends a read, retried with the shared backoff while no answer came back.
    fn get(&self, make: impl Fn() -> RequestBuilder, what: &str) -> Result<Response> {
        let resp = self
            .http
            .send_idempotent(make, |e, delay| {
                backup_common::log::log(
                    crate::COMPONENT,
                    &format!(
                        "{what}: {} — retrying in {delay:?}",
                        backup_common::http::describe(e)
                    ),
                )
            })
            .map_err(|e| self.transport(&e, what))?;
        self.check(resp, what)
    }

    /// Passes a success or a 404 (the callers decide what it means); any other
    /// answer is an error that says what to check.
    fn check(&self, resp: Response, what: &str) -> Result<Response> {
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(resp);
        }
        let body = self.http.block_on(resp.text()).unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().chars().take(200).collect());
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                "check N8N_API_KEY (and its scopes)"
            }
            _ => "see n8n's log",
        };
        bail!("{what}: n8n answered {status}: {message} — {hint}")
    }

    fn transport(&self, e: &reqwest::Error, what: &str) -> anyhow::Error {
        let text = backup_common::http::describe(e);
        if e.is_timeout() {
            anyhow::anyhow!(
                "{what}: n8n at {} stopped answering (no data for {} s): {text} — check n8n, or \
                 raise --stall-timeout / BACKUP_STALL_TIMEOUT",
                self.base,
                self.http.timeouts().stall_timeout
            )
        } else {
            anyhow::anyhow!(
                "{what}: cannot reach n8n at {}: {text} — check N8N_URL and that n8n is running",
                self.base
            )
        }
    }

    fn json(&self, resp: Response, what: &str) -> Result<Value> {
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type.starts_with("application/json") {
            // With the public API disabled, n8n answers its paths with the editor's page.
            bail!(
                "{what}: n8n answered with {content_type:?}, not its API — the public API is disabled \
                 (N8N_PUBLIC_API_DISABLED) or N8N_URL points elsewhere"
            );
        }
        let text = self
            .http
            .block_on(resp.text())
            .map_err(|e| self.transport(&e, what))?;
        serde_json::from_str(&text).with_context(|| format!("{what}: n8n's answer is not JSON"))
    }

    /// Every workflow, through every page.
    pub fn list_all(&self) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_request = || {
                let req = self
                    .request(Method::GET, "/workflows")
                    .query(&[("limit", PAGE.to_string())]);
                match &cursor {
                    Some(c) => req.query(&[("cursor", c)]),
                    None => req,
                }
            };
            let resp = self.get(page_request, "listing workflows")?;
            if resp.status() == StatusCode::NOT_FOUND {
                bail!(
                    "listing workflows: n8n's public API answered 404 — it is disabled (N8N_PUBLIC_API_DISABLED) or N8N_URL is wrong"
                );
            }
            let page = self.json(resp, "listing workflows")?;
            let data = page["data"]
                .as_array()
                .context("listing workflows: no data array in n8n's answer")?;
            all.extend(data.iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                _ => return Ok(all),
            }
        }
    }

    pub fn exists(&self, id: &str) -> Result<bool> {
        let resp = self.get(
            || self.request(Method::GET, &format!("/workflows/{id}")),
            "reading a workflow",
        )?;
        Ok(resp.status().is_success())
    }

    pub fn update(&self, id: &str, body: &Value) -> Result<()> {
        let resp = self.send(
            self.request(Method::PUT, &format!("/workflows/{id}"))
                .json(body),
            &format!("updating workflow {id}"),
        )?;
        if !resp.status().is_success() {
            bail!("updating workflow {id}: it disappeared during the restore");
        }
        Ok(())
    }

    /// Creates a workflow; the API gives it a new id, which is returned.
    pub fn create(&self, body: &Value) -> Result<String> {
        let what = format!("creating workflow {}", body["name"].as_str().unwrap_or("?"));
        let resp = self.send(self.request(Method::POST, "/workflows").json(body), &what)?;
        let created = self.json(resp, &what)?;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .context("n8n did not return the new workflow's id")
    }

    pub fn activate(&self, id: &str) -> Result<()> {
        self.send(
            self.request(Method::POST, &format!("/workflows/{id}/activate")),
            &format!("activating workflow {id}"),
        )?;
        Ok(())
    }
}

/// The n8n CLI, as a command prefix, and where its files go.
pub struct N8nCli {
    argv: Vec<String>,
    temp_base: PathBuf,
}

/// A file the CLI writes or reads, in a private folder of its own (0700,
/// unpredictable name: nobody else can plant, swap or read anything there),
/// removed with the folder when dropped and on a signal.
pub struct TempFile {
    dir: Option<tempfile::TempDir>,
    pub path: PathBuf,
}

impl TempFile {
    /// In a private folder made in `base`.
    fn new(base: &Path, what: &str) -> Result<TempFile> {
        let dir = cleanup::critical(|registry| {
            let dir = tempfile::Builder::new()
                .prefix(".n8n-export-")
                .tempdir_in(base)?;
            registry.add_temp(dir.path());
            Ok::<_, std::io::Error>(dir)
        })
        .with_context(|| format!("cannot create a private folder in {}", base.display()))?;
        let path = dir.path().join(format!("{what}.json"));
        Ok(TempFile {
            dir: Some(dir),
            path,
        })
    }

    /// Writes the file (it must not exist yet: `O_EXCL`, 0600).
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| f.write_all(bytes))
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Reads what the CLI wrote, never through a link.
    pub fn read(&self) -> std::io::Result<String> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let mut text = String::new();
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)?
            .read_to_string(&mut text)?;
        Ok(text)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            cleanup::forget_temp(dir.path());
        }
    }
}

impl N8nCli {
    /// `temp_base`: where the CLI's files go (`--cli-temp-dir`).
    pub fn parse(prefix: &str, temp_base: PathBuf) -> Result<N8nCli> {
        let argv = shell_words::split(prefix).map_err(|e| {
            backup_common::usage(format!("N8N_CLI {prefix:?} is not a valid command: {e}"))
        })?;
        if argv.is_empty() {
            return Err(backup_common::usage("N8N_CLI is empty"));
        }
        Ok(N8nCli { argv, temp_base })
    }

    /// A file for the CLI to write or read (see `TempFile`).
    pub fn temp_file(&self, what: &str) -> Result<TempFile> {
        TempFile::new(&self.temp_base, what)
    }

    /// Runs a CLI command; returns whether it succeeded and what it printed
    /// (its stdout carries logs, never the data: the data goes to files).
    fn run(&self, args: &[String]) -> Result<(bool, String)> {
        // Registered as it starts, so that a signal stops the CLI with us.
        let child = cleanup::spawn(
            Command::new(&self.argv[0])
                .args(&self.argv[1..])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .map_err(|e| {
            anyhow::anyhow!("cannot run N8N_CLI ({}): {e} — check N8N_CLI", self.argv[0])
        })?;
        let pid = child.id();
        let out = child.wait_with_output();
        cleanup::forget_child(pid);
        let out = out.context("cannot wait for the n8n CLI")?;
        let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
        log.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok((out.status.success(), log))
    }

    /// `export:<things> --all --output=FILE` (`workflow`, `credentials`);
    /// `None` when n8n has none (its CLI then exits 1 saying "No … found").
    pub fn export(&self, command: &str, plural: &str, file: &TempFile) -> Result<Option<Value>> {
        let kind = command;
        let (ok, log) = self.run(&[
            format!("export:{command}"),
            "--all".into(),
            format!("--output={}", file.path.display()),
        ])?;
        if !ok {
            if log.contains(&format!("No {plural} found")) {
                return Ok(None);
            }
            bail!("n8n CLI export:{kind} failed: {}", last_lines(&log));
        }
        let text = file.read().with_context(|| {
            format!(
                "n8n CLI export:{kind} wrote no file {} ({})",
                file.path.display(),
                last_lines(&log)
            )
        })?;
        let value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("n8n CLI export:{kind} wrote malformed JSON: {e}"))?;
        Ok(Some(value))
    }

    pub fn import_workflows(&self, file: &TempFile) -> Result<()> {
        self.import("workflow", file)
    }

    /// `import:credentials`: as stored (still encrypted), with their ids.
    pub fn import_credentials(&self, file: &TempFile) -> Result<()> {
        self.import("credentials", file)
    }

    fn import(&self, command: &str, file: &TempFile) -> Result<()> {
        let (ok, log) = self.run(&[
            format!("import:{command}"),
            format!("--input={}", file.path.display()),
        ])?;
        if !ok {
            bail!("n8n CLI import:{command} failed: {}", last_lines(&log));
        }
        Ok(())
    }
}

/// The last meaningful lines of a CLI's output, on one line.
fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        "it printed nothing".into()
    } else {
        tail.join(" / ")
    }
}
