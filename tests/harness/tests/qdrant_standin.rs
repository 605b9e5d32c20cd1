//! The Qdrant stand-in must answer like the real Qdrant 1.18.3 did in the
//! recordings: every exchange of both transcripts is replayed in order, and
//! status, content type, JSON shape (and plain-text bodies, and the bytes of
//! snapshot downloads) are compared.

use serde_json::Value;
use test_harness::qdrant::{recordings_dir, sha256, QdrantStandin};

const KEY: &str = "stand-in-api-key";

fn transcript(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(recordings_dir().join(name)).expect("recordings");
    serde_json::from_str(&text).unwrap()
}

/// Same JSON types, same object keys, arrays compared by their first element.
fn same_shape(recorded: &Value, got: &Value, at: &str) -> Result<(), String> {
    match (recorded, got) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<_> = a.keys().collect();
            let kb: Vec<_> = b.keys().collect();
            if ka != kb {
                return Err(format!("{at}: keys {ka:?} vs {kb:?}"));
            }
            for (k, v) in a {
                same_shape(v, &b[k], &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => match (a.first(), b.first()) {
            (Some(x), Some(y)) => same_shape(x, y, &format!("{at}[0]")),
            _ => Ok(()),
        },
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => Ok(()),
        _ => Err(format!("{at}: {recorded} vs {got}")),
    }
}

/// How a transcript's snapshot downloads compare with the stand-in's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Downloads {
    /// The snapshot files in the recordings folder: the same bytes.
    Shipped,
    /// Of the recorded `documents` collection, not kept: the same size.
    SameSize,
    /// Of collections the transcript made itself (synthetic in the stand-in):
    /// a download of some bytes.
    Any,
}

fn replay(file: &str, api_key: Option<&str>, downloads: Downloads) {
    let server = QdrantStandin::start(api_key);
    // The recorded server made all its snapshots within one second.
    server.freeze_clock(chrono::Utc::now());
    let client = reqwest::blocking::Client::new();
    let snapshot = std::fs::read(recordings_dir().join("collection-documents.snapshot")).unwrap();
    let mut failures = Vec::new();
    // Snapshot names carry their creation time: recorded names map to the ones
    // the stand-in gave when the same snapshot was created in the replay.
    let mut names: Vec<(String, String)> = Vec::new();
    let entries = transcript(file);
    assert!(entries.len() >= 25, "{file} holds the whole recorded run");
    assert!(
        downloads != Downloads::Any || file.contains("aliases"),
        "only the alias run's snapshots are synthetic"
    );
    for (i, e) in entries.iter().enumerate() {
        let method = reqwest::Method::from_bytes(e["method"].as_str().unwrap().as_bytes()).unwrap();
        let mut path = e["path"].as_str().unwrap().to_owned();
        for (recorded, given) in &names {
            path = path.replace(recorded, given);
        }
        let path = path.as_str();
        let note = e["note"].as_str().unwrap();
        let mut req = client.request(method, format!("{}{path}", server.url));
        let headers = e["request_headers"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for name in headers.keys() {
            // Keys were redacted in the recording; the notes say which one was wrong.
            match name.as_str() {
                "api-key" if note.contains("wrong API key") => {
                    req = req.header("api-key", "wrong-key")
                }
                "api-key" => req = req.header("api-key", api_key.unwrap_or_default()),
                "Authorization" => {
                    req = req.header(
                        "Authorization",
                        format!("Bearer {}", api_key.unwrap_or_default()),
                    )
                }
                _ => {}
            }
        }
        let body = &e["request_body"];
        if let Some(text) = body.as_str().filter(|t| t.contains("multipart/form-data")) {
            let file = if text.starts_with("<99 bytes") {
                b"this is not a tar archive".to_vec()
            } else {
                snapshot.clone()
            };
            let part = reqwest::blocking::multipart::Part::bytes(file).file_name("upload.snapshot");
            req = req.multipart(reqwest::blocking::multipart::Form::new().part("snapshot", part));
        } else if !body.is_null() {
            req = req.json(body);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.bytes().unwrap();
        let want_status = e["status"].as_u64().unwrap() as u16;
        let want_type = e["response_headers"]["content-type"]
            .as_str()
            .map(str::to_owned);
        let label = format!("#{i} {} {path} ({note})", e["method"].as_str().unwrap());
        if status != want_status {
            failures.push(format!("{label}: status {status}, recorded {want_status}"));
            continue;
        }
        if content_type != want_type {
            failures.push(format!(
                "{label}: content-type {content_type:?}, recorded {want_type:?}"
            ));
            continue;
        }
        let recorded = &e["response_body"];
        match want_type.as_deref() {
            Some("application/json") => {
                let got: Value = serde_json::from_slice(&bytes).unwrap();
                if let (Some(r), Some(g)) = (
                    recorded["result"]["name"].as_str(),
                    got["result"]["name"].as_str(),
                ) {
                    names.push((r.to_owned(), g.to_owned()));
                }
                if let Err(d) = same_shape(recorded, &got, "body") {
                    failures.push(format!("{label}: {d}"));
                }
                // Alias lists are names only, nothing random: the same pairs
                // (in no promised order: the real server's order is its map's).
                let pairs = |v: &Value| {
                    let mut p: Vec<String> = v["result"]["aliases"]
                        .as_array()
                        .map(|a| a.iter().map(Value::to_string).collect())
                        .unwrap_or_default();
                    p.sort();
                    p
                };
                if path.ends_with("/aliases") && pairs(recorded) != pairs(&got) {
                    failures.push(format!(
                        "{label}: aliases {:?}, recorded {:?}",
                        pairs(&got),
                        pairs(recorded)
                    ));
                }
                if recorded["status"].is_string() && recorded["status"] != got["status"] {
                    failures.push(format!(
                        "{label}: status field {} vs {}",
                        got["status"], recorded["status"]
                    ));
                }
            }
            Some("application/octet-stream") => {
                let want = recorded.as_str().unwrap();
                let got = format!("<{} bytes sha256={}>", bytes.len(), sha256(&bytes));
                let same_size = want.split(" sha256=").next() == got.split(" sha256=").next();
                let differs = match downloads {
                    Downloads::Shipped => want != got,
                    Downloads::SameSize => !same_size,
                    Downloads::Any => bytes.is_empty(),
                };
                if differs {
                    failures.push(format!("{label}: download {got}, recorded {want}"));
                }
            }
            _ => {
                let got = String::from_utf8_lossy(&bytes);
                if recorded.as_str() != Some(&*got) {
                    failures.push(format!("{label}: body {got:?}, recorded {recorded}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the stand-in differs from the recording:\n{}",
        failures.join("\n")
    );
}

#[test]
fn replays_the_recorded_transcript() {
    replay("transcript.json", None, Downloads::Shipped);
}

#[test]
fn replays_the_recorded_transcript_with_an_api_key() {
    replay("transcript-api-key.json", Some(KEY), Downloads::SameSize);
}

/// Aliases: list, per collection, create (and silently re-point), delete (of a
/// missing one: true), rename, an alias to a missing collection (404), a
/// collection under an alias's name (400), collection endpoints through an
/// alias, a collection deleted with its aliases, a restored snapshot without
/// aliases.
#[test]
fn replays_the_recorded_alias_transcript() {
    replay("transcript-aliases.json", None, Downloads::Any);
}
