//! Delivery: one request (or a short exchange, for Matrix) per target, each
//! bounded in time; e-mail through lettre's SMTP client.
//!
//! A failure is a one-line reason without the URL or any credential.

use super::message::Message;
use super::target::{Encryption, HttpAuth, Service, Smtp, Target};
use backup_common::secret::redact;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use std::time::Duration;

/// Connecting, and a whole request, never take longer than these.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts while no connection could be made (nothing was sent, so a retry
/// cannot post the message twice), and the first pause between them.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Discord refuses a message longer than this.
const DISCORD_LIMIT: usize = 2000;

/// The services' fixed API hosts, replaced as a whole by `api_root` when set
/// (a relay that forwards to them; the tests' local receiver).
const SLACK_HOOKS: &str = "https://hooks.slack.com";
const SLACK_API: &str = "https://slack.com";
const DISCORD_API: &str = "https://discord.com";
const TELEGRAM_API: &str = "https://api.telegram.org";

pub struct Sender {
    client: Client,
    api_root: Option<String>,
}

/// What every target is sent: the message, and the report where the service
/// takes an attachment (e-mail, Discord) or is the generic JSON POST.
pub struct Delivery<'a> {
    pub message: &'a Message,
    pub report_json: &'a str,
}

impl Sender {
    pub fn new(api_root: Option<String>) -> Result<Sender, String> {
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("backup-kit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Sender {
            client,
            api_root: api_root.map(|r| r.trim_end_matches('/').to_owned()),
        })
    }

    fn root<'a>(&'a self, real: &'a str) -> &'a str {
        self.api_root.as_deref().unwrap_or(real)
    }

    /// Sends to one target; the error is one line, already redacted.
    pub fn send(&self, target: &Target, d: &Delivery) -> Result<(), String> {
        let m = d.message;
        let result = match &target.service {
            Service::Ntfy {
                server,
                topic,
                auth,
                priority,
            } => {
                let body = json!({
                    "topic": topic,
                    "title": m.title,
                    "message": m.body,
                    "priority": priority.unwrap_or(if m.urgent { 4 } else { 3 }),
                    "tags": [if m.urgent { "warning" } else { "white_check_mark" }],
                });
                self.post(|| {
                    let req = self.client.post(server.as_str()).json(&body);
                    match auth {
                        Some(HttpAuth::Basic { user, password }) => {
                            req.basic_auth(user, Some(password.expose()))
                        }
                        Some(HttpAuth::Bearer(token)) => req.bearer_auth(token.expose()),
                        None => req,
                    }
                })
                .map(drop)
            }
            Service::Gotify {
                server,
                token,
                priority,
            } => {
                let body = json!({
                    "title": m.title,
                    "message": m.body,
                    "priority": priority.unwrap_or(if m.urgent { 8 } else { 4 }),
                });
                let url = format!("{server}message");
                self.post(|| {
                    self.client
                        .post(&url)
                        .header("X-Gotify-Key", token.expose())
                        .json(&body)
                })
                .map(drop)
            }
            Service::SlackWebhook { path } => {
                let url = format!("{}/services/{}", self.root(SLACK_HOOKS), path.expose());
                let body = json!({ "text": slack_text(&m.title, &m.body) });
                self.post(|| self.client.post(&url).json(&body)).map(drop)
            }
            Service::SlackBot { token, channel } => {
                let url = format!("{}/api/chat.postMessage", self.root(SLACK_API));
                let body = json!({
                    "channel": channel,
                    "text": slack_text(&m.title, &m.body),
                });
                self.post(|| {
                    self.client
                        .post(&url)
                        .bearer_auth(token.expose())
                        .json(&body)
                })
                .and_then(api_ok)
            }
            Service::Discord { webhook, token } => {
                let url = format!(
                    "{}/api/webhooks/{webhook}/{}",
                    self.root(DISCORD_API),
                    token.expose()
                );
                let content = discord_content(&m.title, &m.body);
                // No mention in a message pings anyone, whatever it holds.
                let payload =
                    json!({ "content": content, "allowed_mentions": { "parse": [] } }).to_string();
                self.post(|| {
                    let form = reqwest::blocking::multipart::Form::new()
                        .text("payload_json", payload.clone())
                        .part(
                            "files[0]",
                            reqwest::blocking::multipart::Part::text(d.report_json.to_owned())
                                .file_name("backup_report.json")
                                .mime_str("application/json")
                                .expect("a valid MIME type"),
                        );
                    self.client.post(&url).multipart(form)
                })
                .map(drop)
            }
            Service::Telegram { token, chats } => {
                let url = format!(
                    "{}/bot{}/sendMessage",
                    self.root(TELEGRAM_API),
                    token.expose()
                );
                chats.iter().try_for_each(|chat| {
                    let mut body = json!({ "text": format!("{}\n\n{}", m.title, m.body) });
                    // `chat:thread` names a topic of a forum group.
                    match chat.rsplit_once(':') {
                        Some((id, thread)) if thread.parse::<i64>().is_ok() => {
                            body["chat_id"] = id.into();
                            body["message_thread_id"] = thread.parse::<i64>().unwrap_or(0).into();
                        }
                        _ => body["chat_id"] = chat.as_str().into(),
                    }
                    self.post(|| self.client.post(&url).json(&body))
                        .and_then(api_ok)
                        .map_err(|e| format!("chat {chat}: {e}"))
                })
            }
            Service::Matrix {
                server,
                user,
                password,
                rooms,
            } => self.matrix(server, user.as_deref(), password.expose(), rooms, m),
            Service::Smtp(smtp) => send_mail(smtp, d),
            Service::Generic { url } => self
                .post(|| {
                    self.client
                        .post(url.expose())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(d.report_json.to_owned())
                })
                .map(drop)
                // A generic endpoint's answer may echo its own URL (path and
                // query are its secret): only the status is kept.
                .map_err(|e| e.split(':').next().unwrap_or("failed").to_owned()),
        };
        result.map_err(|e| one_line(&redact(&e)))
    }

    /// A request with its answer checked (2xx), retried only while no
    /// connection could be made.
    fn post(&self, make: impl Fn() -> RequestBuilder) -> Result<Response, String> {
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        let response = loop {
            match make().send() {
                Ok(r) => break r,
                Err(e) if e.is_connect() && attempt < ATTEMPTS => {
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(backup_common::http::describe(&e)),
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().unwrap_or_default();
        Err(format!(
            "HTTP {status}{}",
            if text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", truncate(text.trim(), 200))
            }
        ))
    }

    /// Matrix's client-server API: log in (unless the password is a token),
    /// find the rooms (the joined ones when none are named; aliases through
    /// the directory) and send to each.
    fn matrix(
        &self,
        server: &url::Url,
        user: Option<&str>,
        password: &str,
        rooms: &[String],
        m: &Message,
    ) -> Result<(), String> {
        let api = format!("{}_matrix/client/v3", server);
        let token = match user {
            None => password.to_owned(),
            Some(user) => {
                let body = json!({
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": password,
                });
                let answer = self
                    .post(|| self.client.post(format!("{api}/login")).json(&body))
                    .and_then(json_of)?;
                let token = answer["access_token"]
                    .as_str()
                    .ok_or("the login answer has no access_token")?
                    .to_owned();
                backup_common::Secret::new(token.clone());
                token
            }
        };
        let ids: Vec<String> = if rooms.is_empty() {
            let answer = self
                .post(|| {
                    self.client
                        .get(format!("{api}/joined_rooms"))
                        .bearer_auth(&token)
                })
                .and_then(json_of)?;
            answer["joined_rooms"]
                .as_array()
                .ok_or("the joined_rooms answer is not a list")?
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        } else {
            rooms
                .iter()
                .map(|room| {
                    if room.starts_with('!') {
                        return Ok(room.clone());
                    }
                    let alias = if room.starts_with('#') {
                        room.clone()
                    } else {
                        format!("#{room}")
                    };
                    let encoded = percent_encoding::utf8_percent_encode(
                        &alias,
                        percent_encoding::NON_ALPHANUMERIC,
                    );
                    let answer = self
                        .post(|| {
                            self.client
                                .get(format!("{api}/directory/room/{encoded}"))
                                .bearer_auth(&token)
                        })
                        .and_then(json_of)
                        .map_err(|e| format!("room {alias}: {e}"))?;
                    answer["room_id"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or(format!("room {alias}: the directory has no room_id"))
                })
                .collect::<Result<_, String>>()?
        };
        if ids.is_empty() {
            return Err("the account has joined no room; name one (rooms=…)".into());
        }
        let body = json!({"msgtype": "m.text", "body": format!("{}\n{}", m.title, m.body)});
        for id in ids {
            let room =
                percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC);
            let txn = format!(
                "backup-kit-{}-{}",
                chrono::Utc::now().timestamp_millis(),
                fastrand::u32(..)
            );
            self.post(|| {
                self.client
                    .put(format!("{api}/rooms/{room}/send/m.room.message/{txn}"))
                    .bearer_auth(&token)
                    .json(&body)
            })
            .map_err(|e| format!("room {id}: {e}"))?;
        }
        Ok(())
    }
}

/// A service's JSON answer.
fn json_of(response: Response) -> Result<Value, String> {
    response.json::<Value>().map_err(|e| {
        format!(
            "the answer is not JSON: {}",
            backup_common::http::describe(&e)
        )
    })
}

/// Slack's and Telegram's APIs answer 200 with `"ok": false` on a refusal.
fn api_ok(response: Response) -> Result<(), String> {
    let v = json_of(response)?;
    if v["ok"] == true {
        return Ok(());
    }
    let why = v["error"]
        .as_str()
        .or(v["description"].as_str())
        .unwrap_or("no reason given");
    Err(format!("refused: {why}"))
}

fn send_mail(smtp: &Smtp, d: &Delivery) -> Result<(), String> {
    use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{SmtpTransport, Transport};

    let mailbox = |a: &str| -> Result<Mailbox, String> {
        a.parse()
            .map_err(|e| format!("{a:?} is not an e-mail address ({e})"))
    };
    let mut builder = lettre::Message::builder()
        .from(mailbox(&smtp.from)?)
        .subject(
            smtp.subject
                .clone()
                .unwrap_or_else(|| d.message.title.clone()),
        );
    for to in &smtp.to {
        builder = builder.to(mailbox(to)?);
    }
    let json = ContentType::parse("application/json").expect("a valid MIME type");
    let mail = builder
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(d.message.body.clone()))
                .singlepart(
                    Attachment::new("backup_report.json".into())
                        .body(d.report_json.to_owned(), json),
                ),
        )
        .map_err(|e| format!("cannot build the mail: {e}"))?;
    let transport = match smtp.encryption {
        Encryption::Implicit => SmtpTransport::relay(&smtp.host),
        Encryption::StartTls => SmtpTransport::starttls_relay(&smtp.host),
        Encryption::None => Ok(SmtpTransport::builder_dangerous(&smtp.host)),
    }
    .map_err(|e| format!("cannot set up TLS: {e}"))?
    .port(smtp.port)
    .timeout(Some(REQUEST_TIMEOUT));
    let transport = match &smtp.credentials {
        Some((user, password)) => {
            transport.credentials(Credentials::new(user.clone(), password.expose().to_owned()))
        }
        None => transport,
    }
    .build();
    transport
        .send(&mail)
        .map(drop)
        .map_err(|e| backup_common::exit::error_chain(&e))
}

/// Slack's mrkdwn reads `<…>` as links and mentions (`<!channel>`,
/// `<https://x|Restore now>`): a database name or a server's error message in
/// the report must stay text. Slack's own escaping: `&`, `<`, `>`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack_text(title: &str, body: &str) -> String {
    format!("*{}*\n{}", slack_escape(title), slack_escape(body))
}

/// Discord renders nothing inside a code block — no link, mention or
/// markdown — so the report's text (names, error messages) goes in one; a
/// fence in the text itself is broken up so it cannot end the block.
fn discord_content(title: &str, body: &str) -> String {
    // No backtick at all inside: none can close the block (a look-alike
    // stands in for it).
    let fence_free = |t: &str| t.replace('`', "\u{2cb}");
    let title = fence_free(title).replace(['*', '_', '~', '|', '[', ']', '<', '>', '@'], " ");
    let head = format!("**{}**\n```\n", title.trim());
    let room = DISCORD_LIMIT.saturating_sub(head.chars().count() + 4);
    format!("{head}{}\n```", truncate(&fence_free(body), room))
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str =
        "database @everyone <!channel> <https://evil.example/x|Restore now> & [click](https://evil.example) ```` ``";

    #[test]
    fn slack_gets_text_not_links_or_mentions() {
        let text = slack_text("backup failed on h", HOSTILE);
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains("&amp;"),
            "{text}"
        );
    }

    #[test]
    fn discord_gets_the_report_inside_one_code_block() {
        let content = discord_content("backup <@&1> failed", HOSTILE);
        assert!(content.starts_with("**backup"), "{content}");
        assert_eq!(content.matches("```").count(), 2, "{content}");
        assert!(content.ends_with("\n```"), "{content}");
        assert!(!content.contains("<@&1>"), "{content}");
        let long = discord_content("t", &"x".repeat(5000));
        assert!(long.chars().count() <= DISCORD_LIMIT && long.ends_with("```"));
    }
}
