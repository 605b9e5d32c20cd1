//! `backup_report.html`: the report as one self-contained page (no script, no
//! external font or style; it works from `file://` and behind any static
//! server), readable on a phone and in dark mode. Pure: the facts in, the page
//! out. Charts are inline SVG drawn here.

use crate::history::Entry;
use crate::report::{human, Report};
use backup_common::record::Status;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

pub struct Page<'a> {
    pub report: &'a Report,
    pub host: &'a str,
    pub now: DateTime<Utc>,
    /// The kept history (this run included), for the charts.
    pub history: &'a [Entry],
    /// The newest artifact per component (its name's time).
    pub newest: BTreeMap<String, DateTime<Utc>>,
    /// The weekly snapshot folders, newest first.
    pub weekly: &'a [String],
    /// How far back the charts reach: the retention window.
    pub window: Duration,
}

const COMPONENTS: [&str; 4] = ["postgres", "minio", "qdrant", "n8n"];

pub fn render(p: &Page) -> String {
    let r = p.report;
    let mut out = String::with_capacity(32 * 1024);
    let status = r.status.name();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <title>Backups on {host}: {status}</title>\n<style>{CSS}</style>\n</head>\n\
         <body>\n<header>\n<h1>Backups on {host}</h1>\n\
         <p class=\"run\"><span class=\"badge {status}\" id=\"run-status\">{status}</span> \
         {kind} run at <time datetime=\"{ts}\">{ts}</time>, {dur} s; tree {total}, \
         {weekly} weekly snapshot(s)</p>\n</header>\n<main>\n",
        host = esc(p.host),
        kind = esc(&r.backup_type),
        ts = esc(&r.timestamp),
        dur = r.duration_seconds,
        total = human(r.statistics.total_size_bytes),
        weekly = r.statistics.weekly_snapshots,
    );
    if !r.errors.is_empty() || !r.warnings.is_empty() {
        out.push_str("<section class=\"problems\" id=\"problems\">\n<h2>Needs a look</h2>\n<ul>\n");
        for e in &r.errors {
            let _ = writeln!(out, "<li class=\"error\">{}</li>", esc(e));
        }
        for w in &r.warnings {
            let _ = writeln!(out, "<li class=\"warning\">{}</li>", esc(w));
        }
        out.push_str("</ul>\n</section>\n");
    }
    out.push_str("<section class=\"cards\">\n");
    for c in COMPONENTS {
        component(&mut out, p, c);
    }
    out.push_str("</section>\n");
    offsite(&mut out, r.offsite.as_ref(), p.now);
    out.push_str("<section id=\"weekly\">\n<h2>Weekly snapshots</h2>\n");
    if p.weekly.is_empty() {
        out.push_str("<p class=\"muted\">none yet</p>\n");
    } else {
        out.push_str("<ul class=\"weeks\">\n");
        for w in p.weekly {
            let _ = writeln!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>\n");
    }
    let _ = write!(
        out,
        "</section>\n</main>\n<footer>written by backup-report at {} — \
         backup_report.json holds every figure</footer>\n</body>\n</html>\n",
        esc(&crate::report::timestamp(p.now))
    );
    out
}

fn component(out: &mut String, p: &Page, name: &str) {
    let entry = p.report.components.get(name);
    let state = match entry.map(|e| e.status) {
        Some(Status::Success) => "success",
        Some(Status::Failed) => "failed",
        None => "not-run",
    };
    let label = match state {
        "not-run" => "not in this run",
        other => other,
    };
    let anomalous = p
        .report
        .warnings
        .iter()
        .any(|w| w.starts_with(&format!("{name}: ")));
    let _ = write!(
        out,
        "<article class=\"card {state}{}\" id=\"c-{name}\" data-status=\"{state}\">\n\
         <h2>{name} <span class=\"badge {state}\">{label}</span></h2>\n<dl>\n",
        if anomalous { " anomaly" } else { "" }
    );
    let age = p
        .newest
        .get(name)
        .map(|t| format!("{} ago", age(p.now - *t)))
        .unwrap_or_else(|| "none in the tree".into());
    let _ = writeln!(out, "<dt>last backup</dt><dd class=\"age\">{age}</dd>");
    if let Some(e) = entry {
        if let Some(file) = &e.file {
            let size = e.size_bytes.map(human).unwrap_or_default();
            let _ = writeln!(
                out,
                "<dt>file</dt><dd><code>{}</code> {size}</dd>",
                esc(file)
            );
        }
        if let Some(err) = &e.error {
            let _ = writeln!(out, "<dt>error</dt><dd class=\"error\">{}</dd>", esc(err));
        }
    }
    if let Some(d) = p.report.restore_test.as_ref().and_then(|d| d.get(name)) {
        let ok = d["status"] == "success";
        let when = d["timestamp"].as_str().unwrap_or("");
        let why = d["error"]
            .as_str()
            .map(|e| format!(": {}", esc(e)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<dt>drill</dt><dd class=\"drill {}\">{} {}{why}</dd>",
            if ok { "success" } else { "failed" },
            if ok { "passed" } else { "failed" },
            esc(&relative(when, p.now))
        );
    }
    out.push_str("</dl>\n");
    for w in p
        .report
        .warnings
        .iter()
        .filter(|w| w.starts_with(&format!("{name}: ")))
    {
        let _ = writeln!(out, "<p class=\"warning\">{}</p>", esc(w));
    }
    chart(out, p, name);
    out.push_str("</article>\n");
}

/// Size and duration per run over the window: the component's series added.
fn chart(out: &mut String, p: &Page, name: &str) {
    let window_start = p.now - p.window;
    // Each point at its artifact's time (the name's), else the run's.
    let mut runs: BTreeMap<DateTime<Utc>, (u64, u64, bool)> = BTreeMap::new();
    for e in p.history.iter().filter(|e| e.component == name) {
        let when = e
            .file
            .as_deref()
            .and_then(backup_common::ArtifactName::parse)
            .map(|n| n.instant_in(&chrono::Local).with_timezone(&Utc))
            .or_else(|| e.time());
        let Some(t) = when.filter(|t| *t >= window_start) else {
            continue;
        };
        let run = runs.entry(t).or_default();
        run.0 += e.size_bytes.unwrap_or(0);
        run.1 += e.duration_seconds;
        run.2 |= e.status == Status::Failed;
    }
    if runs.len() < 2 {
        out.push_str("<p class=\"muted chart-none\">a chart after two runs</p>\n");
        return;
    }
    // From the oldest point (within the window) to now.
    let since = runs.keys().next().copied().unwrap_or(window_start);
    let span = (p.now - since).num_seconds().max(1) as f64;
    let x = |t: &DateTime<Utc>| 4.0 + 292.0 * ((*t - since).num_seconds() as f64 / span);
    for what in ["size", "duration"] {
        let value = |r: &(u64, u64, bool)| if what == "size" { r.0 } else { r.1 };
        let max = runs.values().map(value).max().unwrap_or(0).max(1);
        let y = |v: u64| 56.0 - 50.0 * (v as f64 / max as f64);
        let points: Vec<String> = runs
            .iter()
            .map(|(t, r)| format!("{:.1},{:.1}", x(t), y(value(r))))
            .collect();
        let shown = if what == "size" {
            human(max)
        } else {
            format!("{max} s")
        };
        let _ = write!(
            out,
            "<figure class=\"chart {what}\"><figcaption>{what} over {} days (max {shown})</figcaption>\
             <svg viewBox=\"0 0 300 60\" role=\"img\" aria-label=\"{name} {what} per run\" \
             preserveAspectRatio=\"none\"><line x1=\"4\" y1=\"56\" x2=\"296\" y2=\"56\" class=\"axis\"/>\
             <polyline points=\"{}\" class=\"line\"/>",
            (p.now - since).num_days().max(1),
            points.join(" ")
        );
        for (t, r) in &runs {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.2\" class=\"{}\"/>",
                x(t),
                y(value(r)),
                if r.2 { "dot failed" } else { "dot" }
            );
        }
        out.push_str("</svg></figure>\n");
    }
}

fn offsite(out: &mut String, o: Option<&Value>, now: DateTime<Utc>) {
    out.push_str("<section id=\"offsite\">\n<h2>Off-site copy</h2>\n");
    match o {
        None => out.push_str("<p class=\"muted\">not configured, or not run yet</p>\n"),
        Some(o) => {
            let ok = o["status"] == "success";
            let _ = writeln!(
                out,
                "<p class=\"{}\"><span class=\"badge {0}\">{}</span> {} — {} file(s), {} sent{}; last success {}</p>",
                if ok { "success" } else { "failed" },
                if ok { "copied" } else { "failed" },
                esc(&relative(o["timestamp"].as_str().unwrap_or(""), now)),
                o["files"].as_u64().unwrap_or(0),
                human(o["bytes"].as_u64().unwrap_or(0)),
                o["error"]
                    .as_str()
                    .map(|e| format!(": {}", esc(e)))
                    .unwrap_or_default(),
                esc(&relative(o["last_success"].as_str().unwrap_or(""), now)),
            );
        }
    }
    out.push_str("</section>\n");
}

/// `3 h 12 min`, `2 days 4 h`: how long ago, at a glance.
fn age(d: Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match minutes {
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} days {} h", m / (24 * 60), (m / 60) % 24),
    }
}

fn relative(when: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(when) {
        Ok(t) => format!("{} ago", age(now - t.with_timezone(&Utc))),
        Err(_) => "never".into(),
    }
}

/// Text into HTML, attributes included.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Light by default, dark when the system is; one column on a phone.
const CSS: &str = "
:root{--bg:#f6f7f9;--fg:#1b1f24;--card:#fff;--muted:#667085;--line:#d0d5dd;
--ok:#127a3a;--okbg:#dcf5e4;--bad:#b42318;--badbg:#fde4e1;--warn:#9a6700;--warnbg:#fff4d6;--accent:#2f6feb}
@media (prefers-color-scheme: dark){:root{--bg:#0f1115;--fg:#e6e8eb;--card:#181b21;--muted:#98a2b3;
--line:#30363d;--ok:#4ade80;--okbg:#12301d;--bad:#ff7b72;--badbg:#3a1414;--warn:#f2cc60;--warnbg:#33290b;--accent:#79a8ff}}
*{box-sizing:border-box}
body{margin:0;padding:16px;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
header,main,footer{max-width:1100px;margin:0 auto}
h1{font-size:1.4rem;margin:0 0 4px}h2{font-size:1.05rem;margin:0 0 8px}
.run{margin:0 0 16px;color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:.8rem;font-weight:600;
vertical-align:middle;background:var(--line);color:var(--fg)}
.badge.completed,.badge.success{background:var(--okbg);color:var(--ok)}
.badge.failed,.badge.partial{background:var(--badbg);color:var(--bad)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px;margin-bottom:16px}
.card,section#offsite,section#weekly,.problems{background:var(--card);border:1px solid var(--line);
border-radius:10px;padding:12px 14px;margin-bottom:12px}
.card.failed{border-color:var(--bad)}.card.anomaly{border-color:var(--warn)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0 0 8px}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
code{font-size:.85em}
.error,.drill.failed,p.failed{color:var(--bad)}
.warning{color:var(--warn);background:var(--warnbg);border-radius:6px;padding:4px 8px;margin:6px 0}
.problems ul{margin:0;padding-left:18px}.problems li{margin:4px 0}
.muted{color:var(--muted)}
figure{margin:6px 0 0}figcaption{font-size:.8rem;color:var(--muted)}
svg{width:100%;height:60px;display:block}
svg .axis{stroke:var(--line);stroke-width:1}
svg .line{fill:none;stroke:var(--accent);stroke-width:1.5;vector-effect:non-scaling-stroke}
svg .dot{fill:var(--accent)}svg .dot.failed{fill:var(--bad)}
.weeks{display:flex;flex-wrap:wrap;gap:6px;list-style:none;padding:0;margin:0}
.weeks li{border:1px solid var(--line);border-radius:6px;padding:2px 8px;font-size:.9rem}
footer{color:var(--muted);font-size:.8rem;margin-top:8px}
@media (max-width:520px){body{padding:10px}.cards{grid-template-columns:1fr}}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_ages_read_at_a_glance() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(age(Duration::minutes(5)), "5 min");
        assert_eq!(age(Duration::minutes(192)), "3 h 12 min");
        assert_eq!(age(Duration::hours(52)), "2 days 4 h");
        assert_eq!(relative("garbage", Utc::now()), "never");
    }

    #[test]
    fn a_failed_component_its_error_and_a_warning_are_on_the_page() {
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "timestamp": "2026-11-29T02:10:00.000Z", "backup_type": "full",
            "status": "partial", "duration_seconds": 300,
            "components": {
                "postgres": {"status": "success", "file": "shop_20261129_020000.sql.gz",
                             "size_bytes": 1400, "duration_seconds": 4},
                "minio": {"status": "failed", "error": "bucket <gone>", "duration_seconds": 1}
            },
            "statistics": {"total_size_bytes": 1, "postgres_backups": 1, "minio_backups": 0,
                "qdrant_backups": 0, "n8n_backups": 0, "weekly_snapshots": 0,
                "retention_days": 30, "retention_weekly": 12},
            "errors": ["minio: bucket <gone>"]
        }))
        .unwrap();
        report.warnings =
            vec!["postgres: shop_20261129_020000.sql.gz is 9% of the recent median".into()];
        let now = DateTime::parse_from_rfc3339("2026-11-29T05:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let page = render(&Page {
            report: &report,
            host: "db1",
            now,
            history: &[],
            newest: BTreeMap::from([("postgres".to_owned(), now - Duration::hours(3))]),
            weekly: &[],
            window: Duration::days(30),
        });
        assert!(page.contains("<li class=\"error\">minio: bucket &lt;gone&gt;</li>"));
        assert!(page.contains("id=\"c-minio\" data-status=\"failed\""));
        assert!(page.contains("class=\"card success anomaly\" id=\"c-postgres\""));
        assert!(page.contains("<dd class=\"age\">3 h 0 min ago</dd>"));
        assert!(page.contains("id=\"c-qdrant\" data-status=\"not-run\""));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "nothing external"
        );
    }
}
