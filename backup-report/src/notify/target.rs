//! Notification targets: one URL each, in shoutrrr's URL format
//! (<https://containrrr.dev/shoutrrr/>), parsed once into typed settings.
//!
//! Tokens and passwords are `Secret`s from here on: registered for redaction,
//! and never part of a target's label, which is all a log line names.

use backup_common::secret::Secret;
use url::Url;

/// Where a notification goes, and what it takes to get there.
#[derive(Debug, Clone, PartialEq)]
pub enum Service {
    /// `ntfy://[user:password@|:token@]host[:port]/topic[?scheme=http&priority=N]`
    Ntfy {
        server: Url,
        topic: String,
        auth: Option<HttpAuth>,
        priority: Option<u8>,
    },
    /// `gotify://host[:port][/path]/token[?disabletls=yes&priority=N]`
    Gotify {
        server: Url,
        token: Secret,
        priority: Option<i64>,
    },
    /// `slack://hook:AAA-BBB-CCC@webhook` (an incoming webhook)
    SlackWebhook { path: Secret },
    /// `slack://xoxb:AAA-BBB-CCC@CHANNEL` (the bot API's chat.postMessage)
    SlackBot { token: Secret, channel: String },
    /// `discord://token@webhookid`
    Discord { webhook: String, token: Secret },
    /// `telegram://token@telegram?chats=@channel,chat-id`
    Telegram { token: Secret, chats: Vec<String> },
    /// `matrix://[user]:password@host[:port]/?rooms=!id,alias[&disabletls=yes]`
    /// (no user: the password is an access token)
    Matrix {
        server: Url,
        user: Option<String>,
        password: Secret,
        rooms: Vec<String>,
    },
    /// `smtp://[user:password@]host[:port]/?from=…&to=a,b[&encryption=…]`
    Smtp(Smtp),
    /// `https://…`, `generic+https://…` (or `http`): the report JSON, POSTed
    Generic { url: Secret },
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpAuth {
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, Secret)>,
    pub from: String,
    pub to: Vec<String>,
    pub subject: Option<String>,
    pub encryption: Encryption,
}

/// How the SMTP connection is protected. Never a silent fall back to plain
/// text: STARTTLS, when chosen, is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS, required.
    StartTls,
    /// Plain text: only when the URL asks for it (`encryption=none`).
    None,
}

/// One configured target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub service: Service,
    /// The variable it came from, for "check …" in a warning.
    pub source: &'static str,
    /// Sent whatever the level (the legacy `BACKUP_NOTIFY_URL`, which always
    /// received the report).
    pub always: bool,
}

impl Target {
    /// What a log line may say about the target: the service and its host,
    /// never a token, a password or a path.
    pub fn label(&self) -> String {
        match &self.service {
            Service::Ntfy { server, .. } => format!("ntfy ({})", host_port(server)),
            Service::Gotify { server, .. } => format!("gotify ({})", host_port(server)),
            Service::SlackWebhook { .. } => "slack (webhook)".into(),
            Service::SlackBot { .. } => "slack (bot API)".into(),
            Service::Discord { .. } => "discord".into(),
            Service::Telegram { .. } => "telegram".into(),
            Service::Matrix { server, .. } => format!("matrix ({})", host_port(server)),
            Service::Smtp(s) => format!("smtp ({}:{})", s.host, s.port),
            Service::Generic { url } => match Url::parse(url.expose()) {
                Ok(u) => format!("generic ({})", host_port(&u)),
                Err(_) => "generic".into(),
            },
        }
    }
}

fn host_port(u: &Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

/// The targets of a list: URLs separated by white space or new lines (a
/// `_FILE` holds one per line; `#` starts a comment line). A URL's commas
/// belong to it (`to=a,b`), hence no comma as a separator.
///
/// One bad URL never silences the good ones: every URL that parses is a
/// target, and every one that does not is a problem, named by its place.
pub fn parse_list(text: &str, source: &'static str) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    let urls = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace);
    for (i, url) in urls.enumerate() {
        match parse(url) {
            Ok(service) => targets.push(Target {
                service,
                source,
                always: false,
            }),
            Err(e) => problems.push(format!("{source}: target #{}: {e}", i + 1)),
        }
    }
    (targets, problems)
}

/// One URL. Errors name the scheme and the field, never the URL itself.
pub fn parse(text: &str) -> Result<Service, String> {
    let scheme = text
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .ok_or("not a URL (scheme://…)")?;
    let url = Url::parse(text).map_err(|e| format!("{scheme}: not a valid URL ({e})"))?;
    remember_secrets(&url);
    let service = match scheme.as_str() {
        "ntfy" => ntfy(&url),
        "gotify" => gotify(&url),
        "slack" => slack(&url),
        "discord" => discord(&url),
        "telegram" => telegram(&url),
        "matrix" => matrix(&url),
        "smtp" => smtp(&url),
        "https" | "http" => {
            remember_generic_secrets(&url);
            Ok(Service::Generic {
                url: Secret::new(url.to_string()),
            })
        }
        "generic+https" | "generic+http" => {
            let plain = &text[text.find("://").unwrap_or(0)..];
            let real = format!("{}{plain}", &scheme["generic+".len()..]);
            let parsed =
                Url::parse(&real).map_err(|e| format!("{scheme}: not a valid URL ({e})"))?;
            remember_generic_secrets(&parsed);
            Ok(Service::Generic {
                url: Secret::new(real),
            })
        }
        other => Err(format!(
            "unknown scheme {other:?} (ntfy, gotify, slack, discord, telegram, matrix, smtp, \
             https or generic+https)"
        )),
    }?;
    Ok(service)
}

/// A URL's password is a credential whatever the scheme; each service's
/// parser makes its own tokens `Secret`s. Users, hosts, topics and addresses
/// are not: masking them would blank ordinary words in every log line.
fn remember_secrets(url: &Url) {
    let password = decoded(url.password().unwrap_or(""));
    if password.len() >= 3 {
        Secret::new(password);
    }
}

/// A generic URL keeps its credential wherever its service chose: every path
/// part as long as a token (shorter ones are words, like `webhooks`) and every
/// query value.
/// A generic URL's path and query are its secret (a webhook's token is
/// wherever its service put it): the whole of each is masked wherever it
/// would be shown, and so is every query value of four characters or more
/// and every path part of twelve or more. Shorter path parts alone are left:
/// they are mostly words (`notify`, `hooks`), and masking one would blank it
/// in every log line.
fn remember_generic_secrets(url: &Url) {
    if url.path().len() > 1 {
        Secret::new(url.path().to_owned());
        Secret::new(decoded(url.path()));
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        Secret::new(query.to_owned());
    }
    for part in url.path().split('/').map(decoded) {
        if part.len() >= 12 {
            Secret::new(part);
        }
    }
    for (_, v) in url.query_pairs() {
        if v.len() >= 4 {
            Secret::new(v.into_owned());
        }
    }
}

fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn query(url: &Url, keys: &[&str]) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| keys.iter().any(|key| k.eq_ignore_ascii_case(key)))
        .map(|(_, v)| v.into_owned())
}

fn yes(value: Option<String>) -> Option<bool> {
    value.map(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1"))
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn password(url: &Url) -> Option<Secret> {
    url.password()
        .map(decoded)
        .filter(|p| !p.is_empty())
        .map(Secret::new)
}

fn user(url: &Url) -> Option<String> {
    Some(decoded(url.username())).filter(|u| !u.is_empty())
}

/// `scheme://host[:port]` plus a path prefix, over TLS unless told otherwise.
fn server(url: &Url, default_host: Option<&str>, tls: bool, path: &str) -> Result<Url, String> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .or(default_host)
        .ok_or("no host")?;
    let scheme = if tls { "https" } else { "http" };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Url::parse(&format!("{scheme}://{host}{port}{path}")).map_err(|e| format!("host: {e}"))
}

fn ntfy(url: &Url) -> Result<Service, String> {
    let topic = url.path().trim_matches('/').to_owned();
    if topic.is_empty() || topic.contains('/') {
        return Err("ntfy: the path must be the topic (ntfy://host/topic)".into());
    }
    let tls = match query(url, &["scheme"]).as_deref() {
        None | Some("https") => true,
        Some("http") => false,
        Some(other) => return Err(format!("ntfy: scheme={other} is neither http nor https")),
    };
    let auth = match (user(url), password(url)) {
        (Some(user), Some(password)) => Some(HttpAuth::Basic { user, password }),
        (None, Some(token)) => Some(HttpAuth::Bearer(token)),
        (Some(_), None) => return Err("ntfy: a user needs a password".into()),
        (None, None) => None,
    };
    let priority = match query(url, &["priority"]) {
        None => None,
        Some(p) => Some(ntfy_priority(&p).ok_or(format!(
            "ntfy: priority={p} is not 1-5 or min, low, default, high, max"
        ))?),
    };
    Ok(Service::Ntfy {
        server: server(url, Some("ntfy.sh"), tls, "/")?,
        topic,
        auth,
        priority,
    })
}

fn ntfy_priority(p: &str) -> Option<u8> {
    match p.to_ascii_lowercase().as_str() {
        "min" | "1" => Some(1),
        "low" | "2" => Some(2),
        "default" | "3" => Some(3),
        "high" | "4" => Some(4),
        "max" | "urgent" | "5" => Some(5),
        _ => None,
    }
}

fn gotify(url: &Url) -> Result<Service, String> {
    let path = url.path().trim_end_matches('/');
    let (prefix, token) = path
        .rsplit_once('/')
        .filter(|(_, t)| !t.is_empty())
        .ok_or("gotify: the last part of the path must be the application token")?;
    let tls = !yes(query(url, &["disabletls"])).unwrap_or(false);
    let priority = match query(url, &["priority"]) {
        None => None,
        Some(p) => Some(
            p.parse()
                .map_err(|_| format!("gotify: priority={p} is not a number"))?,
        ),
    };
    Ok(Service::Gotify {
        server: server(url, None, tls, &format!("{prefix}/"))?,
        token: Secret::new(decoded(token)),
        priority,
    })
}

fn slack(url: &Url) -> Result<Service, String> {
    let host = url.host_str().unwrap_or("");
    // The older form: slack://AAA/BBB/CCC (a webhook's three parts).
    if url.password().is_none() {
        let parts: Vec<&str> = std::iter::once(host)
            .chain(url.path().split('/').filter(|p| !p.is_empty()))
            .collect();
        return match parts.as_slice() {
            [a, b, c] if !a.is_empty() => Ok(Service::SlackWebhook {
                path: Secret::new(format!("{}/{b}/{c}", a.to_ascii_uppercase())),
            }),
            _ => Err(
                "slack: expected slack://hook:AAA-BBB-CCC@webhook or slack://xoxb:TOKEN@CHANNEL"
                    .into(),
            ),
        };
    }
    let kind = url.username().to_ascii_lowercase();
    let token = decoded(url.password().unwrap_or(""));
    let parts: Vec<&str> = token.split(['-', '/', ',']).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err("slack: the token must have three parts (AAA-BBB-CCC)".into());
    }
    match kind.as_str() {
        "hook" | "" => Ok(Service::SlackWebhook {
            path: Secret::new(parts.join("/")),
        }),
        k if k.starts_with("xox") => {
            if host.is_empty() {
                return Err(
                    "slack: the bot API needs a channel (slack://xoxb:TOKEN@CHANNEL)".into(),
                );
            }
            Ok(Service::SlackBot {
                token: Secret::new(format!("{k}-{}", parts.join("-"))),
                channel: host.to_ascii_uppercase(),
            })
        }
        other => Err(format!(
            "slack: token type {other:?} is neither hook nor xoxb/xoxp"
        )),
    }
}

fn discord(url: &Url) -> Result<Service, String> {
    let token = decoded(url.username());
    let webhook = url.host_str().unwrap_or("").to_owned();
    if token.is_empty() || webhook.is_empty() || !webhook.bytes().all(|b| b.is_ascii_digit()) {
        return Err("discord: expected discord://TOKEN@WEBHOOK_ID".into());
    }
    Ok(Service::Discord {
        webhook,
        token: Secret::new(token),
    })
}

fn telegram(url: &Url) -> Result<Service, String> {
    let (bot, key) = (decoded(url.username()), password(url));
    let Some(key) = key.filter(|_| !bot.is_empty()) else {
        return Err("telegram: expected telegram://BOTID:KEY@telegram?chats=…".into());
    };
    let chats = list(query(url, &["chats", "channels"]));
    if chats.is_empty() {
        return Err("telegram: chats=… names no chat".into());
    }
    Ok(Service::Telegram {
        token: Secret::new(format!("{bot}:{}", key.expose())),
        chats,
    })
}

fn matrix(url: &Url) -> Result<Service, String> {
    let password = password(url)
        .ok_or("matrix: expected matrix://user:password@host or matrix://:token@host")?;
    let tls = !yes(query(url, &["disabletls"])).unwrap_or(false);
    Ok(Service::Matrix {
        server: server(url, None, tls, "/")?,
        user: user(url),
        password,
        rooms: list(query(url, &["rooms"])),
    })
}

fn smtp(url: &Url) -> Result<Service, String> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("smtp: no host")?;
    let port = url.port().unwrap_or(25);
    let from = query(url, &["from", "fromaddress"]).ok_or("smtp: no from=…")?;
    let to = list(query(url, &["to", "toaddresses"]));
    if to.is_empty() {
        return Err("smtp: no to=…".into());
    }
    let starttls = yes(query(url, &["usestarttls", "starttls"])).unwrap_or(true);
    let encryption = match query(url, &["encryption"])
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("auto") if port == 465 => Encryption::Implicit,
        None | Some("auto") if starttls => Encryption::StartTls,
        None | Some("auto") | Some("none") => Encryption::None,
        Some("explicittls") => Encryption::StartTls,
        Some("implicittls") => Encryption::Implicit,
        Some(other) => {
            return Err(format!(
                "smtp: encryption={other} is not auto, explicittls, implicittls or none"
            ))
        }
    };
    let credentials = match (user(url), password(url)) {
        (Some(u), Some(p)) => Some((u, p)),
        (None, None) => None,
        _ => return Err("smtp: give both a user and a password, or neither".into()),
    };
    Ok(Service::Smtp(Smtp {
        host: host.to_owned(),
        port,
        credentials,
        from,
        to,
        subject: query(url, &["subject", "title"]),
        encryption,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(url: &str) -> Service {
        parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn ntfy_urls_take_a_host_a_topic_and_either_credential() {
        let Service::Ntfy {
            server,
            topic,
            auth,
            priority,
        } = one("ntfy://:tk_secret123@ntfy.example.org:8080/backups?scheme=http&priority=high")
        else {
            panic!()
        };
        assert_eq!(server.as_str(), "http://ntfy.example.org:8080/");
        assert_eq!(topic, "backups");
        assert_eq!(
            auth,
            Some(HttpAuth::Bearer(Secret::new("tk_secret123".into())))
        );
        assert_eq!(priority, Some(4));
        let Service::Ntfy { server, auth, .. } = one("ntfy:///alerts") else {
            panic!()
        };
        assert_eq!(server.as_str(), "https://ntfy.sh/", "the default host");
        assert_eq!(auth, None);
        let Service::Ntfy { auth, .. } = one("ntfy://ops:pw-secret@ntfy.sh/alerts") else {
            panic!()
        };
        assert!(matches!(auth, Some(HttpAuth::Basic { user, .. }) if user == "ops"));
        assert!(parse("ntfy://host/").unwrap_err().contains("topic"));
        assert!(parse("ntfy://host/t?scheme=ftp")
            .unwrap_err()
            .contains("scheme=ftp"));
    }

    #[test]
    fn gotify_takes_the_token_from_the_last_path_part() {
        let Service::Gotify { server, token, .. } =
            one("gotify://example.com:8443/path/to/gotify/AzyoeNS.D4iJLVa/?priority=9")
        else {
            panic!()
        };
        assert_eq!(server.as_str(), "https://example.com:8443/path/to/gotify/");
        assert_eq!(token.expose(), "AzyoeNS.D4iJLVa");
        let Service::Gotify { server, .. } = one("gotify://10.0.0.2/tok123?disabletls=yes") else {
            panic!()
        };
        assert_eq!(server.as_str(), "http://10.0.0.2/");
        assert!(parse("gotify://host").is_err());
    }

    #[test]
    fn slack_knows_webhooks_in_both_forms_and_the_bot_api() {
        let hook = "WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi";
        assert_eq!(
            one(&format!("slack://hook:{hook}@webhook")),
            Service::SlackWebhook {
                path: Secret::new("WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi".into())
            }
        );
        assert_eq!(
            one("slack://WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi"),
            Service::SlackWebhook {
                path: Secret::new("WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi".into())
            }
        );
        assert_eq!(
            one("slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L"),
            Service::SlackBot {
                token: Secret::new(
                    "xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N".into()
                ),
                channel: "C001CH4NN3L".into()
            }
        );
        assert!(parse("slack://hook:only-two@webhook").is_err());
    }

    #[test]
    fn discord_and_telegram_keep_their_tokens_whole() {
        assert_eq!(
            one("discord://W3dE2OZz4C13_4z@693853386302554172"),
            Service::Discord {
                webhook: "693853386302554172".into(),
                token: Secret::new("W3dE2OZz4C13_4z".into())
            }
        );
        assert_eq!(
            one("telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@ops,-1001234"),
            Service::Telegram {
                token: Secret::new("110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw".into()),
                chats: vec!["@ops".into(), "-1001234".into()]
            }
        );
        assert!(parse("telegram://110201543:KEY@telegram")
            .unwrap_err()
            .contains("chats"));
        assert!(parse("discord://token@not-a-number").is_err());
    }

    #[test]
    fn matrix_takes_a_password_or_a_token() {
        let Service::Matrix {
            server,
            user,
            rooms,
            ..
        } = one("matrix://bot:pw-secret@matrix.example.org:8448/?rooms=!abc:example.org,%23ops:example.org")
        else {
            panic!()
        };
        assert_eq!(server.as_str(), "https://matrix.example.org:8448/");
        assert_eq!(user.as_deref(), Some("bot"));
        assert_eq!(rooms, ["!abc:example.org", "#ops:example.org"]);
        let Service::Matrix { server, user, .. } =
            one("matrix://:syt_token@localhost:8008/?disableTLS=yes")
        else {
            panic!()
        };
        assert_eq!((server.as_str(), user), ("http://localhost:8008/", None));
    }

    #[test]
    fn smtp_requires_starttls_unless_told_otherwise() {
        let Service::Smtp(s) = one(
            "smtp://ops%40example.org:pw-secret@mail.example.org:587/?from=backup@example.org&to=a@example.org,b@example.org",
        ) else {
            panic!()
        };
        assert_eq!((s.host.as_str(), s.port), ("mail.example.org", 587));
        assert_eq!(s.encryption, Encryption::StartTls);
        assert_eq!(s.credentials.as_ref().unwrap().0, "ops@example.org");
        assert_eq!(s.to, ["a@example.org", "b@example.org"]);
        let enc = |q: &str| match one(&format!("smtp://h:{q}&from=a@b&to=c@d")) {
            Service::Smtp(s) => s.encryption,
            _ => panic!(),
        };
        assert_eq!(enc("465/?x=1"), Encryption::Implicit);
        assert_eq!(enc("25/?usestarttls=no"), Encryption::None);
        assert_eq!(enc("25/?encryption=None"), Encryption::None);
        assert_eq!(enc("2525/?encryption=ImplicitTLS"), Encryption::Implicit);
        assert!(parse("smtp://h/?to=c@d").unwrap_err().contains("from"));
        assert!(parse("smtp://u@h/?from=a@b&to=c@d")
            .unwrap_err()
            .contains("both"));
    }

    #[test]
    fn plain_and_generic_urls_post_the_report_and_labels_hide_secrets() {
        assert_eq!(
            one("generic+http://127.0.0.1:9/hook?token=abc"),
            Service::Generic {
                url: Secret::new("http://127.0.0.1:9/hook?token=abc".into())
            }
        );
        let (targets, problems) = parse_list(
            "# ops\nntfy://:tk_secret123@ntfy.example.org/backups\n  https://hooks.example.org/x/sekrit-path-123?key=value-secret  smtp://u:pw-secret@mail:587/?from=a@b&to=c@d\n",
            "BACKUP_NOTIFY_URLS",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let labels: Vec<String> = targets.iter().map(Target::label).collect();
        assert_eq!(
            labels,
            [
                "ntfy (ntfy.example.org)",
                "generic (hooks.example.org)",
                "smtp (mail:587)"
            ]
        );
        let (good, problems) = parse_list(
            "ntfy://h/t ftp://user:pw-secret@h/ gotify://g/tokenvalue",
            "BACKUP_NOTIFY_URLS",
        );
        assert_eq!(good.len(), 2, "the good ones around a bad one stay");
        let err = &problems[0];
        assert!(
            err.starts_with("BACKUP_NOTIFY_URLS: target #2: unknown scheme \"ftp\""),
            "{err}"
        );
        assert!(!err.contains("pw-secret"));
        assert_eq!(
            backup_common::secret::redact("x sekrit-path-123 y value-secret"),
            "x *** y ***"
        );
        // A short token is masked with its path or query around it, and a
        // query value alone.
        parse("https://h.example/t/abc123?k=s3cr").unwrap();
        assert_eq!(
            backup_common::secret::redact("POST /t/abc123?k=s3cr (key s3cr)"),
            "POST ***?*** (key ***)"
        );
    }
}
