//! backup-report --notify, the real binary against local stand-ins of each
//! HTTP service's API (method, path, headers and body checked) and a real
//! SMTP server (aiosmtpd) that requires STARTTLS and AUTH.

use backup_common::ResultRecord;
use serde_json::{json, Value};
use std::fs;
use test_harness::receiver::{Receiver, Request};
use test_harness::smtp::SmtpServer;
use test_harness::Tool;

const BIN: &str = env!("CARGO_BIN_EXE_backup-report");
const MINIO_ERROR: &str =
    "cannot list bucket documents: connection refused; check MINIO_ENDPOINT and that MinIO is running";

// Every credential the targets carry: none may reach the output.
const NTFY_TOKEN: &str = "tk_ntfy0secret7";
const GOTIFY_TOKEN: &str = "Agotify0secret7";
const SLACK_HOOK: &str = "T0000SECRET-B0000SECRET-slackhook0secret0abcdefghij";
const SLACK_BOT: &str = "123456789012-1234567890123-slackbot0secret0abcdefghij";
const DISCORD_TOKEN: &str = "discord0secret0token";
const TELEGRAM_KEY: &str = "AAHtelegram0secret0key";
const MATRIX_PASSWORD: &str = "matrix0secret0pw";
const MATRIX_TOKEN: &str = "syt_matrix0login0token";
const GENERIC_KEY: &str = "generic0secret0key";

fn records(minio_down: bool) -> String {
    let published = backup_common::publish::Published {
        path: "postgres/shop_20261126_150401.sql.gz".into(),
        file_name: "shop_20261126_150401.sql.gz".into(),
        size_bytes: 2048,
        sha256: "ab".repeat(32),
    };
    let pg = ResultRecord::success("postgres", &published).to_line();
    let minio = if minio_down {
        ResultRecord::failed("minio", MINIO_ERROR.into()).to_line()
    } else {
        let published = backup_common::publish::Published {
            path: "minio/documents_20261126_150401.tar.gz".into(),
            file_name: "documents_20261126_150401.tar.gz".into(),
            size_bytes: 4096,
            sha256: "cd".repeat(32),
        };
        ResultRecord::success("minio", &published).to_line()
    };
    format!("{pg}\n{minio}\n")
}

struct Run {
    root: tempfile::TempDir,
    out: test_harness::Output,
}

/// One report of a run (MinIO down or not) with --notify, and the metrics.
fn report(env: &[(&str, String)], minio_down: bool, root: Option<tempfile::TempDir>) -> Run {
    let root = root.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let records_file = root.path().join("records.jsonl");
    fs::write(&records_file, records(minio_down)).unwrap();
    let mut tool = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .without("BACKUP_NOTIFY_URLS")
        .without("BACKUP_NOTIFY_URL")
        .without("BACKUP_NOTIFY_LEVEL");
    for (k, v) in env {
        tool = tool.env(k, v.clone());
    }
    let prom = root.path().join("backup.prom");
    let out = tool.run(&[
        records_file.to_str().unwrap(),
        "--component",
        "postgres",
        "--component",
        "minio",
        "--notify",
        "--prometheus",
        prom.to_str().unwrap(),
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "notifications never fail the report: {}",
        out.stderr
    );
    Run { root, out }
}

impl Run {
    fn report(&self) -> Value {
        serde_json::from_slice(&fs::read(self.root.path().join("backup_report.json")).unwrap())
            .unwrap()
    }

    fn notify_state(&self) -> Value {
        serde_json::from_slice(&fs::read(self.root.path().join("notify.json")).unwrap()).unwrap()
    }

    fn metrics(&self) -> String {
        fs::read_to_string(self.root.path().join("backup.prom")).unwrap()
    }

    fn assert_no_secret(&self) {
        let state = fs::read_to_string(self.root.path().join("notify.json")).unwrap_or_default();
        for s in [
            NTFY_TOKEN,
            GOTIFY_TOKEN,
            SLACK_HOOK,
            SLACK_BOT,
            DISCORD_TOKEN,
            TELEGRAM_KEY,
            MATRIX_PASSWORD,
            MATRIX_TOKEN,
            GENERIC_KEY,
        ] {
            for part in s.split('-') {
                assert!(
                    !self.out.all().contains(part),
                    "{part} shown: {}",
                    self.out.all()
                );
                assert!(!state.contains(part), "{part} in notify.json: {state}");
            }
        }
    }
}

/// Matrix's, Slack's and Telegram's APIs answer with JSON the client reads.
fn services() -> Receiver {
    Receiver::answering(Box::new(|r: &Request| {
        let path = r.url.split('?').next().unwrap_or("");
        let body = match path {
            "/_matrix/client/v3/login" => json!({"access_token": MATRIX_TOKEN}),
            p if p.starts_with("/_matrix/client/v3/directory/room/") => {
                json!({"room_id": "!ops:example.org"})
            }
            "/_matrix/client/v3/joined_rooms" => json!({"joined_rooms": ["!all:example.org"]}),
            p if p.starts_with("/_matrix/") => json!({"event_id": "$1"}),
            "/api/chat.postMessage" => json!({"ok": true}),
            p if p.starts_with("/bot") => json!({"ok": true, "result": {}}),
            _ => return (200, "ok".into()),
        };
        (200, body.to_string())
    }))
}

fn every_http_target(at: &str) -> String {
    [
        format!("ntfy://:{NTFY_TOKEN}@{at}/backups?scheme=http"),
        format!("gotify://{at}/sub/{GOTIFY_TOKEN}?disabletls=yes"),
        format!("slack://hook:{SLACK_HOOK}@webhook"),
        format!("slack://xoxb:{SLACK_BOT}@C001CH4NN3L"),
        format!("discord://{DISCORD_TOKEN}@693853386302554172"),
        format!("telegram://110201543:{TELEGRAM_KEY}@telegram?chats=@ops,-100123:7"),
        format!("matrix://bot:{MATRIX_PASSWORD}@{at}/?rooms=%23ops:example.org&disableTLS=yes"),
        format!("generic+http://{at}/hook?key={GENERIC_KEY}"),
    ]
    .join("\n")
}

/// The message every target carries, in whatever field the service takes.
fn assert_names_minio(what: &str, text: &str) {
    assert!(
        text.contains("backup partial on ") && text.contains(&format!("minio: {MINIO_ERROR}")),
        "{what} does not name the failure: {text}"
    );
    assert!(text.contains("ok: postgres 2.0 KiB"), "{what}: {text}");
}

#[test]
fn a_failed_run_reaches_every_http_service_through_its_own_api() {
    let api = services();
    let urls = every_http_target(api.authority());
    let run = report(
        &[
            ("BACKUP_NOTIFY_URLS", urls),
            ("BACKUP_NOTIFY_API_ROOT", api.url.clone()),
        ],
        true,
        None,
    );
    let seen = api.take();
    let lines: Vec<String> = seen.iter().map(Request::line).collect();
    let hook_path = SLACK_HOOK.replace('-', "/");
    assert_eq!(
        lines,
        [
            "POST /".to_owned(),
            "POST /sub/message".into(),
            format!("POST /services/{hook_path}"),
            "POST /api/chat.postMessage".into(),
            format!("POST /api/webhooks/693853386302554172/{DISCORD_TOKEN}"),
            format!("POST /bot110201543:{TELEGRAM_KEY}/sendMessage"),
            format!("POST /bot110201543:{TELEGRAM_KEY}/sendMessage"),
            "POST /_matrix/client/v3/login".into(),
            "GET /_matrix/client/v3/directory/room/%23ops%3Aexample%2Eorg".into(),
            lines[9].clone(),
            format!("POST /hook?key={GENERIC_KEY}"),
        ],
        "{}",
        run.out.stderr
    );
    // ntfy: JSON publishing to the server's root, the token as a bearer.
    let ntfy = seen[0].json();
    assert_eq!(ntfy["topic"], "backups");
    assert_eq!(ntfy["priority"], 4, "a failed run is urgent");
    assert_names_minio(
        "ntfy",
        &format!("{} {}", ntfy["title"], ntfy["message"].as_str().unwrap()),
    );
    assert_eq!(
        seen[0].header("Authorization"),
        Some(&*format!("Bearer {NTFY_TOKEN}"))
    );
    // Gotify: the application token in its header, never in the URL.
    assert_eq!(seen[1].header("X-Gotify-Key"), Some(GOTIFY_TOKEN));
    let gotify = seen[1].json();
    assert_eq!(gotify["priority"], 8);
    assert_names_minio(
        "gotify",
        &format!(
            "{} {}",
            gotify["title"],
            gotify["message"].as_str().unwrap()
        ),
    );
    // Slack: a webhook's text, and the bot API's channel and bearer token.
    assert_names_minio("slack webhook", seen[2].json()["text"].as_str().unwrap());
    let bot = seen[3].json();
    assert_eq!(bot["channel"], "C001CH4NN3L");
    assert_eq!(
        seen[3].header("Authorization"),
        Some(&*format!("Bearer xoxb-{SLACK_BOT}"))
    );
    assert_names_minio("slack bot", bot["text"].as_str().unwrap());
    // Discord: multipart, the message in payload_json, the report as a file.
    let discord = seen[4].text();
    assert!(
        seen[4]
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/form-data"),
        "{:?}",
        seen[4].headers
    );
    assert!(
        discord.contains("name=\"payload_json\"")
            && discord.contains("filename=\"backup_report.json\""),
        "{discord}"
    );
    assert!(discord.contains(&run.report()["timestamp"].as_str().unwrap().to_string()));
    assert_names_minio("discord", &discord);
    // Telegram: one message per chat; a chat:thread names a forum topic.
    let (t1, t2) = (seen[5].json(), seen[6].json());
    assert_eq!(
        (&t1["chat_id"], &t2["chat_id"]),
        (&json!("@ops"), &json!("-100123"))
    );
    assert_eq!(t2["message_thread_id"], 7);
    assert_names_minio("telegram", t1["text"].as_str().unwrap());
    // Matrix: a password login, the alias resolved, the message sent with
    // the token the login gave, under a transaction id of its own.
    let login = seen[7].json();
    assert_eq!(login["identifier"]["user"], "bot");
    assert_eq!(login["password"], MATRIX_PASSWORD);
    assert!(
        lines[9].starts_with(
            "PUT /_matrix/client/v3/rooms/%21ops%3Aexample%2Eorg/send/m%2Eroom%2Emessage/"
        ) || lines[9].starts_with(
            "PUT /_matrix/client/v3/rooms/%21ops%3Aexample%2Eorg/send/m.room.message/"
        ),
        "{}",
        lines[9]
    );
    assert_eq!(
        seen[9].header("Authorization"),
        Some(&*format!("Bearer {MATRIX_TOKEN}"))
    );
    assert_eq!(seen[9].json()["msgtype"], "m.text");
    assert_names_minio("matrix", seen[9].json()["body"].as_str().unwrap());
    // Generic: today's JSON POST of the report itself.
    assert_eq!(seen[10].json(), run.report());
    let state = run.notify_state();
    assert_eq!(state["sent"].as_array().unwrap().len(), 8, "{state}");
    assert_eq!(state["failures_total"], 0);
    assert!(run.metrics().contains("backup_notify_failures_total 0\n"));
    for label in [
        "ntfy (127.0.0.1:",
        "slack (webhook)",
        "telegram",
        "matrix (127.0.0.1:",
    ] {
        assert!(
            run.out
                .stderr
                .contains(&format!("report: notified {label}")),
            "{}",
            run.out.stderr
        );
    }
    run.assert_no_secret();
}

#[test]
fn level_error_is_silent_for_a_completed_run_and_a_dead_target_is_only_a_warning() {
    let api = services();
    let closed = test_harness::free_port();
    let urls = format!(
        "ntfy://:{NTFY_TOKEN}@127.0.0.1:{closed}/backups?scheme=http\n# the team\nntfy://{}/team?scheme=http",
        api.authority()
    );
    let env = [("BACKUP_NOTIFY_URLS", urls)];
    let run = report(&env, false, None);
    assert_eq!(run.report()["status"], "completed");
    assert!(
        api.take().is_empty(),
        "a completed run sends nothing at level error"
    );
    assert!(
        run.out
            .stderr
            .contains("no notification to ntfy (127.0.0.1:")
            && run
                .out
                .stderr
                .contains("the run completed and BACKUP_NOTIFY_LEVEL is error"),
        "{}",
        run.out.stderr
    );
    assert!(
        !run.root.path().join("notify.json").exists(),
        "nothing sent, nothing kept"
    );

    // MinIO down: exactly one message reaches the live target; the dead one
    // is a warning and a count, and the report is what it would have been.
    let run = report(&env, true, Some(run.root));
    let seen = api.take();
    assert_eq!(
        seen.len(),
        1,
        "{:?}",
        seen.iter().map(Request::line).collect::<Vec<_>>()
    );
    let m = seen[0].json();
    assert_eq!(m["topic"], "team");
    assert_names_minio(
        "ntfy",
        &format!("{} {}", m["title"], m["message"].as_str().unwrap()),
    );
    assert_eq!(run.report()["status"], "partial");
    assert!(
        run.out.stderr.contains(&format!(
            "report: warning: notifying ntfy (127.0.0.1:{closed}) failed: error sending request"
        )) && run
            .out
            .stderr
            .contains("check BACKUP_NOTIFY_URLS and the service"),
        "{}",
        run.out.stderr
    );
    assert_eq!(run.notify_state()["failures_total"], 1);
    assert!(run
        .metrics()
        .contains("# TYPE backup_notify_failures_total counter\nbackup_notify_failures_total 1\n"));
    run.assert_no_secret();

    // The counter only grows; `always` sends a completed run too, `never` nothing.
    let run = report(
        &[env[0].clone(), ("BACKUP_NOTIFY_LEVEL", "always".into())],
        false,
        Some(run.root),
    );
    assert_eq!(api.take().len(), 1);
    assert_eq!(run.notify_state()["failures_total"], 2);
    let run = report(
        &[env[0].clone(), ("BACKUP_NOTIFY_LEVEL", "never".into())],
        true,
        Some(run.root),
    );
    assert!(api.take().is_empty());
    assert!(run.metrics().contains("backup_notify_failures_total 2\n"));
}

#[test]
fn mail_goes_through_required_starttls_with_the_report_attached() {
    let smtp = SmtpServer::start();
    let url = format!(
        "smtp://{}:{}@127.0.0.1:{}/?from=backup@example.org&to=ops@example.org,dba@example.org",
        smtp.user.replace('@', "%40"),
        smtp.password,
        smtp.port
    );
    let run = report(
        &[
            ("BACKUP_NOTIFY_URLS", url.clone()),
            ("SSL_CERT_FILE", smtp.ca().display().to_string()),
        ],
        true,
        None,
    );
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{}", run.out.stderr);
    let mail = &mails[0];
    for needle in [
        "X-Test-TLS: yes",
        &format!("X-Test-Login: {}", smtp.user),
        "X-Test-Envelope: backup@example.org -> ops@example.org,dba@example.org",
        "Subject: backup partial on ",
        "Content-Disposition: attachment; filename=\"backup_report.json\"",
    ] {
        assert!(mail.contains(needle), "{needle:?} not in:\n{mail}");
    }
    assert!(
        mail.contains("minio: cannot list bucket documents"),
        "{mail}"
    );
    assert!(run
        .out
        .stderr
        .contains(&format!("report: notified smtp (127.0.0.1:{})", smtp.port)));
    assert!(!run.out.all().contains(&smtp.password));

    // A certificate nobody vouches for: not sent, a warning, never plain text.
    let run = report(&[("BACKUP_NOTIFY_URLS", url)], true, None);
    assert_eq!(smtp.mails().len(), 1);
    assert!(
        run.out.stderr.contains(&format!(
            "warning: notifying smtp (127.0.0.1:{}) failed",
            smtp.port
        )),
        "{}",
        run.out.stderr
    );
    assert!(!run.out.all().contains(&smtp.password));
}

#[test]
fn check_notify_lists_the_targets_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("urls");
    fs::write(
        &file,
        format!("# ops\n{}\n", every_http_target("127.0.0.1:9")),
    )
    .unwrap();
    let t = Tool::new(BIN)
        .env("BACKUP_DIR", dir.path())
        .without("BACKUP_NOTIFY_URLS")
        .without("BACKUP_NOTIFY_URL");
    let out = t
        .clone()
        .env("BACKUP_NOTIFY_URLS_FILE", &file)
        .run(&["--check-notify"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "ntfy (127.0.0.1:9) from BACKUP_NOTIFY_URLS\n\
         gotify (127.0.0.1:9) from BACKUP_NOTIFY_URLS\n\
         slack (webhook) from BACKUP_NOTIFY_URLS\n\
         slack (bot API) from BACKUP_NOTIFY_URLS\n\
         discord from BACKUP_NOTIFY_URLS\n\
         telegram from BACKUP_NOTIFY_URLS\n\
         matrix (127.0.0.1:9) from BACKUP_NOTIFY_URLS\n\
         generic (127.0.0.1:9) from BACKUP_NOTIFY_URLS\n"
    );
    let out = t
        .env(
            "BACKUP_NOTIFY_URLS",
            format!("ntfy://h/t smtp://u:{MATRIX_PASSWORD}@mail/?to=ops@example.org"),
        )
        .run(&["--check-notify"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.trim_end().ends_with(
            " report: notification check failed: BACKUP_NOTIFY_URLS: target #2: smtp: no from=…; \
             the other targets still get messages"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(MATRIX_PASSWORD));
}

/// Nine targets in the file, one of them malformed: the other eight are
/// reached, the ninth is a warning and a counted failure.
#[test]
fn one_malformed_url_among_nine_silences_none_of_the_others() {
    let api = services();
    let mut urls: Vec<String> = every_http_target(api.authority())
        .lines()
        .map(str::to_owned)
        .collect();
    urls.insert(4, "smtp://u@mail/?to=ops@example.org".into());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("urls");
    fs::write(&file, urls.join("\n")).unwrap();
    let run = report(
        &[
            (
                "BACKUP_NOTIFY_URLS_FILE",
                file.to_string_lossy().into_owned(),
            ),
            ("BACKUP_NOTIFY_API_ROOT", api.url.clone()),
        ],
        true,
        None,
    );
    let seen = api.take();
    assert_eq!(
        seen.len(),
        11,
        "all eight services, as with no bad URL: {}",
        run.out.stderr
    );
    assert!(
        run.out
            .stderr
            .contains("not notified: BACKUP_NOTIFY_URLS: target #5: smtp: no from=…"),
        "{}",
        run.out.stderr
    );
    let state = run.notify_state();
    assert_eq!(state["sent"].as_array().unwrap().len(), 8, "{state}");
    assert_eq!(state["failed"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["failures_total"], 1, "{state}");
    run.assert_no_secret();
}

/// What a database name or a server's error message can carry into chat.
#[test]
fn chat_messages_carry_names_as_text_never_as_mentions_or_links() {
    let api = services();
    let hostile = "@everyone <!channel> <https://evil.example/x|Restore now>";
    let root = tempfile::tempdir().unwrap();
    let urls = every_http_target(api.authority());
    let records_file = root.path().join("records.jsonl");
    fs::write(
        &records_file,
        format!(
            "{{\"component\":\"postgres\",\"status\":\"failed\",\"duration_seconds\":1,\"error\":\"{}\"}}\n",
            hostile.replace('"', "\\\"")
        ),
    )
    .unwrap();
    let out = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .env("BACKUP_NOTIFY_URLS", urls)
        .env("BACKUP_NOTIFY_API_ROOT", &api.url)
        .without("BACKUP_NOTIFY_URL")
        .without("BACKUP_NOTIFY_LEVEL")
        .run(&[
            records_file.to_str().unwrap(),
            "--component",
            "postgres",
            "--notify",
        ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let seen = api.take();
    let slack = seen
        .iter()
        .filter(|r| r.line().contains("/services/") || r.line().contains("chat.postMessage"))
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(slack.len(), 2);
    for text in &slack {
        assert!(
            text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
            "{text}"
        );
        assert!(!text.contains("<https://"), "{text}");
    }
    let discord = seen
        .iter()
        .find(|r| r.line().contains("/api/webhooks/"))
        .unwrap()
        .text();
    assert!(
        discord.contains(r#""allowed_mentions":{"parse":[]}"#),
        "{discord}"
    );
    assert!(
        discord.contains("```"),
        "the report's text in a code block: {discord}"
    );
}
