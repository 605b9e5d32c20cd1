//! backup-report: result records + the backup tree → `backup_report.json`,
//! optionally node_exporter metrics and a text summary.

pub mod anomaly;
pub mod health;
pub mod history;
pub mod html;
pub mod inputs;
pub mod kept;
pub mod notify;
pub mod report;
pub mod settings;
pub mod stats;

use anyhow::{Context, Result};
use backup_common::{log, publish, Component};
use clap::Parser;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const COMPONENT: &str = "report";

#[derive(Debug, Parser)]
#[command(
    name = "backup-report",
    version,
    about = "Write backup_report.json from the tools' result records (stdin or files) and the backup tree"
)]
pub struct Cli {
    /// Files of result records (JSON lines); default or `-`: stdin
    pub records: Vec<PathBuf>,
    /// A component the run selected (repeatable): without a readable success
    /// record it counts as failed
    #[arg(long = "component", value_name = "NAME", value_parser = ["postgres", "minio", "qdrant", "n8n"])]
    pub components: Vec<String>,
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    /// The run's backup type
    #[arg(long = "type", default_value = "full", value_parser = ["full", "incremental"])]
    pub backup_type: String,
    /// The run's duration in seconds (default: the sum of the components')
    #[arg(long)]
    pub duration: Option<u64>,
    /// The run was stopped by this signal (backup.sh): the report's status
    /// is `interrupted`, whatever the records say
    #[arg(long, value_name = "SIGNAL")]
    pub interrupted: Option<String>,
    /// Days of daily backups kept (default: BACKUP_RETENTION_DAYS, else 30)
    #[arg(long, value_name = "DAYS")]
    pub days: Option<String>,
    /// Weekly snapshots kept (default: BACKUP_RETENTION_WEEKLY, else 12)
    #[arg(long, value_name = "WEEKS")]
    pub weeks: Option<String>,
    /// Keep this run's records per component in $BACKUP_DIR/records/ and
    /// report every other component by its kept records: one report of the
    /// whole stack when components run on their own (Kubernetes CronJobs)
    #[arg(long, env = "BACKUP_KEEP_RECORDS")]
    pub keep_records: bool,
    /// A new backup smaller than this share of its series' recent median (the
    /// last 7 successful ones) is a warning: `50` or `50%` (default:
    /// BACKUP_SHRINK_WARN, else 50)
    #[arg(long, value_name = "PERCENT")]
    pub shrink_warn: Option<String>,
    /// Also write node_exporter textfile metrics here (atomically)
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Print a short human summary on stdout
    #[arg(long)]
    pub text: bool,
    /// After writing the report, send a short message to each target of
    /// BACKUP_NOTIFY_URLS (URLs in shoutrrr's format, see the README) as
    /// BACKUP_NOTIFY_LEVEL says; a failed delivery is only a warning
    #[arg(long)]
    pub notify: bool,
    /// Which runs --notify reports: error (runs that were not completed),
    /// always or never (default: BACKUP_NOTIFY_LEVEL, else error)
    #[arg(long, value_name = "LEVEL")]
    pub notify_level: Option<String>,
    /// Instead of writing a report, draw the last one (backup_report.json, the
    /// history and the tree) as a self-contained HTML page into FILE (`-`:
    /// stdout). Every run writes $BACKUP_DIR/backup_report.html anyway
    #[arg(long, value_name = "FILE", conflicts_with_all = ["records", "health", "check_schedule"])]
    pub html: Option<PathBuf>,
    /// Instead of writing a report, check BACKUP_NOTIFY_URLS and print each
    /// target's service and host (exit 2 when one is not valid)
    #[arg(long, conflicts_with_all = ["records", "health", "check_schedule"])]
    pub check_notify: bool,
    /// Instead of writing a report, judge the last one against the schedule (the
    /// container's HEALTHCHECK): exit 1 when it is not `completed` or is overdue
    #[arg(long, conflicts_with_all = ["records", "check_schedule"])]
    pub health: bool,
    /// Instead of writing a report, check that the schedule is one crond runs
    /// and print its next run (exit 2 when it is not)
    #[arg(long, conflicts_with = "records")]
    pub check_schedule: bool,
    /// Instead of writing a report, check every setting the report reads
    /// (BACKUP_RETENTION_DAYS, BACKUP_NOTIFY_LEVEL, …): one line per bad one,
    /// exit 2 when there is one (the entrypoint, in every mode)
    #[arg(long, conflicts_with_all = ["records", "health", "check_schedule"])]
    pub check_settings: bool,
    /// The cron schedule, for --health and --check-schedule
    #[arg(long, env = "BACKUP_SCHEDULE", default_value = "0 2 * * *")]
    pub schedule: String,
    /// --health: minutes a run may take before its report counts as overdue
    #[arg(long, default_value_t = 120)]
    pub grace_minutes: u32,
    /// --health: a file whose modification time is when the service started
    /// (until the first run is due, no report is not a problem)
    #[arg(long, value_name = "FILE")]
    pub started_file: Option<PathBuf>,
    /// When backup.sh drills restores (never, weekly, always): with `never`
    /// --health does not judge the drills (default: BACKUP_RESTORE_TEST,
    /// else weekly)
    #[arg(long, value_name = "WHEN")]
    pub restore_test: Option<String>,
    /// --health: hours the last successful off-site copy may be old (default:
    /// BACKUP_OFFSITE_MAX_AGE_HOURS; unset: not judged)
    #[arg(long, value_name = "HOURS")]
    pub offsite_max_age_hours: Option<String>,
    /// --health: days the newest successful drill of every component may be
    /// old (default: BACKUP_RESTORE_TEST_MAX_AGE_DAYS, else 8)
    #[arg(long, value_name = "DAYS")]
    pub restore_test_max_age_days: Option<String>,
}

impl Cli {
    /// The settings from the flags and the environment, and every bad value.
    pub fn settings(&self) -> (settings::Settings, Vec<String>) {
        settings::resolve(
            &settings::Given {
                days: self.days.as_deref(),
                weeks: self.weeks.as_deref(),
                shrink_warn: self.shrink_warn.as_deref(),
                notify_level: self.notify_level.as_deref(),
                restore_test: self.restore_test.as_deref(),
                offsite_max_age_hours: self.offsite_max_age_hours.as_deref(),
                restore_test_max_age_days: self.restore_test_max_age_days.as_deref(),
            },
            &|name| std::env::var(name).ok(),
        )
    }
}

pub fn run(cli: Cli) -> i32 {
    if cli.check_settings {
        return backup_common::tool::run(COMPONENT, "settings check", || {
            let (_, problems) = cli.settings();
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                return Ok(());
            }
            Err(backup_common::usage(format!(
                "{} setting(s) are not valid: {}",
                problems.len(),
                problems.join("; ")
            )))
        });
    }
    if cli.check_schedule {
        return backup_common::tool::run(COMPONENT, "schedule check", || check_schedule(&cli));
    }
    if cli.health {
        return backup_common::tool::run(COMPONENT, "health check", || check_health(&cli));
    }
    if cli.check_notify {
        return backup_common::tool::run(COMPONENT, "notification check", check_notify);
    }
    if let Some(file) = &cli.html {
        return backup_common::tool::run(COMPONENT, "page", || {
            write_page_of_last_report(&cli, file)
        });
    }
    backup_common::tool::run(COMPONENT, "report", || write_report(&cli))
}

fn schedule(cli: &Cli) -> Result<health::Schedule> {
    health::Schedule::parse(&cli.schedule).map_err(backup_common::usage)
}

fn check_schedule(cli: &Cli) -> Result<()> {
    let s = schedule(cli)?;
    // `0 2 30 2 *` parses, and never fires: a schedule of no runs at all.
    let Some(next) = s.next_after(chrono::Local::now()) else {
        return Err(backup_common::usage(format!(
            "schedule \"{}\" never fires (no date matches it); check BACKUP_SCHEDULE",
            s.text()
        )));
    };
    println!(
        "schedule \"{}\": next run at {}",
        s.text(),
        next.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    );
    Ok(())
}

fn check_health(cli: &Cli) -> Result<()> {
    let s = schedule(cli)?;
    let path = cli.tree.backup_dir.join("backup_report.json");
    let report: Option<serde_json::Value> = match std::fs::read(&path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not JSON; check backup.log", path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let started = cli
        .started_file
        .as_ref()
        .and_then(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .map(chrono::DateTime::<chrono::Local>::from);
    let drills = read_drills(&cli.tree.backup_dir)?;
    let offsite = read_offsite(&cli.tree.backup_dir)?;
    let (settings, problems) = cli.settings();
    for p in &problems {
        warn(p);
    }
    let verdict = health::judge(&health::Facts {
        schedule: &s,
        report: report.as_ref(),
        now: chrono::Local::now(),
        grace: chrono::Duration::minutes(cli.grace_minutes.into()),
        started,
        drill_max_age: (settings.restore_test != "never")
            .then(|| chrono::Duration::days(settings.restore_test_max_age_days.into())),
        drills: drills.as_ref(),
        offsite_max_age: settings
            .offsite_max_age_hours
            .map(|h| chrono::Duration::hours(h.into())),
        offsite: offsite.as_ref(),
    });
    match verdict {
        Ok(why) => {
            println!("healthy: {why}");
            Ok(())
        }
        Err(why) => anyhow::bail!("unhealthy: {why}"),
    }
}

fn check_notify() -> Result<()> {
    let (targets, problems) = notify::targets_from_env().map_err(backup_common::usage)?;
    if targets.is_empty() && problems.is_empty() {
        println!("no notification target is set (BACKUP_NOTIFY_URLS)");
    }
    for t in &targets {
        println!("{} from {}", t.label(), t.source);
    }
    if !problems.is_empty() {
        return Err(backup_common::usage(format!(
            "{}; the other targets still get messages",
            problems.join("; ")
        )));
    }
    Ok(())
}

/// The last drill's record (`restore_test.json`, backup-verify writes it), if any.
fn read_drills(root: &Path) -> Result<Option<serde_json::Value>> {
    read_json(root, "restore_test.json")
}

/// The last off-site copy's record (`offsite.json`, backup.sh writes it), if any.
fn read_offsite(root: &Path) -> Result<Option<serde_json::Value>> {
    read_json(root, "offsite.json")
}

fn read_json(root: &Path, name: &str) -> Result<Option<serde_json::Value>> {
    let path = root.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not JSON; the next run writes it again",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_report(cli: &Cli) -> Result<()> {
    let expected: Vec<Component> = cli
        .components
        .iter()
        .filter_map(|c| Component::from_name(c))
        .collect();
    // A bad setting is a warning of this report, never the end of it.
    let (settings, setting_problems) = cli.settings();
    let mut lines = read_lines(&cli.records)?;
    let mut keep = None;
    if cli.keep_records {
        let stored = kept::read(&cli.tree.backup_dir)?;
        let merged = kept::merge(lines, &cli.components, &stored);
        lines = merged.lines;
        keep = Some(merged.store);
    }
    let run = inputs::read(&lines, &expected);
    for problem in &run.problems {
        warn(problem);
    }
    let stats = stats::scan(&cli.tree.backup_dir)?;
    let facts = report::RunFacts {
        backup_type: cli.backup_type.clone(),
        duration_seconds: cli.duration,
        retention_days: settings.days,
        retention_weekly: settings.weeks,
        now: chrono::Utc::now(),
    };
    let mut report = report::assemble(&run, &stats, &facts);
    // The silent failure: a backup that succeeded but looks wrong.
    let history = history::read(&cli.tree.backup_dir);
    let this_run = history::entries_of(&run, &report.timestamp);
    if let Some(signal) = &cli.interrupted {
        report.status = report::RunStatus::Interrupted;
        report.errors.push(format!(
            "the run was interrupted by {signal}: what it had not verified or drilled by then \
             is unchecked; run backup-verify --all, or wait for the next run"
        ));
    }
    report.warnings = setting_problems;
    report.warnings.extend(
        anomaly::judge(
            &this_run,
            &history,
            &stats.series_files,
            settings.shrink_warn,
        )
        .into_iter()
        .map(|a| a.text),
    );
    for w in &report.warnings {
        warn(w);
    }
    // The last restore drill (backup-verify --restore-test), a section of its own.
    report.restore_test = warn_if_failed(read_drills(&cli.tree.backup_dir))
        .flatten()
        .and_then(|d| d.get("components").cloned());
    report.offsite = warn_if_failed(read_offsite(&cli.tree.backup_dir)).flatten();
    let mut text = serde_json::to_string_pretty(&report)?;
    text.push('\n');
    // A report that cannot be written (a full disk) still goes out as a
    // notification, saying so; the run then fails with that error.
    let written =
        publish::write_atomically(&cli.tree.backup_dir, "backup_report.json", text.as_bytes())
            .with_context(|| {
                format!(
                    "the report could not be written to {} — check the disk's free space; \
                     the last report there is stale",
                    cli.tree.backup_dir.join("backup_report.json").display()
                )
            });
    match &written {
        Ok(()) => log::log(
            COMPONENT,
            &format!(
                "wrote {} (status {})",
                cli.tree.backup_dir.join("backup_report.json").display(),
                report.status.name()
            ),
        ),
        Err(e) => {
            let why = backup_common::exit::one_line(e);
            log::log(COMPONENT, &format!("error: {why}"));
            // The last report would say "completed" about a run long past:
            // gone, the health check and the dashboards see no report (an
            // unlink needs no free space).
            let stale = cli.tree.backup_dir.join("backup_report.json");
            if std::fs::symlink_metadata(&stale).is_ok_and(|m| m.is_file())
                && std::fs::remove_file(&stale).is_ok()
            {
                log::log(COMPONENT, "removed the stale backup_report.json");
            }
            report.errors.push(why);
            if report.status == report::RunStatus::Completed {
                report.status = report::RunStatus::Partial;
            }
            if cli.notify {
                let text = serde_json::to_string_pretty(&report)?;
                send_notifications(cli, settings.notify_level, &report, &text);
            }
            return written;
        }
    }
    let recent = history::keep(
        [history, this_run].concat(),
        facts.now,
        retention_window(&settings),
    );
    warn_if_failed(history::write(&cli.tree.backup_dir, &recent));
    if let Some(store) = &keep {
        warn_if_failed(
            kept::write(&cli.tree.backup_dir, store).context("the records were not kept"),
        );
    }
    let page = page(&settings, &report, &stats, &recent, facts.now);
    warn_if_failed(publish::write_atomically(
        &cli.tree.backup_dir,
        "backup_report.html",
        page.as_bytes(),
    ));
    let notify_failures_total = if cli.notify {
        send_notifications(cli, settings.notify_level, &report, &text)
    } else {
        read_notify_state(&cli.tree.backup_dir).failures_total
    };
    if let Some(file) = &cli.prometheus {
        write_file(
            "--prometheus",
            file,
            report::prometheus(&report, &stats, &run.series, notify_failures_total).as_bytes(),
        )?;
    }
    if cli.text {
        print!("{}", report::text(&report));
    }
    Ok(())
}

fn warn(text: &str) {
    log::log(COMPONENT, &format!("warning: {text}"));
}

/// What the report can do without (the history, the page, a section): a
/// failure is a warning line, and the report goes on.
fn warn_if_failed<T>(result: Result<T>) -> Option<T> {
    result
        .map_err(|e| warn(&backup_common::exit::one_line(&e)))
        .ok()
}

fn retention_window(settings: &settings::Settings) -> chrono::Duration {
    chrono::Duration::days(i64::from(settings.days) + 7 * i64::from(settings.weeks) + 1)
}

fn page(
    settings: &settings::Settings,
    report: &report::Report,
    stats: &report::TreeStats,
    history: &[history::Entry],
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    html::render(&html::Page {
        report,
        host: &backup_common::audit::host(),
        now,
        history,
        newest: stats
            .newest
            .iter()
            .map(|(c, t)| (c.name().to_owned(), *t))
            .collect(),
        weekly: &stats.weekly_folders,
        window: retention_window(settings),
    })
}

/// `--html FILE`: the page of the last report, without a new one.
fn write_page_of_last_report(cli: &Cli, file: &Path) -> Result<()> {
    let root = &cli.tree.backup_dir;
    let path = root.join("backup_report.json");
    let bytes = std::fs::read(&path)
        .with_context(|| format!("cannot read {}; has a backup run yet?", path.display()))?;
    let report: report::Report = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a report; the next run writes it again",
            path.display()
        )
    })?;
    let stats = stats::scan(root)?;
    let page = page(
        &cli.settings().0,
        &report,
        &stats,
        &history::read(root),
        chrono::Utc::now(),
    );
    if file.as_os_str() == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(page.as_bytes())?;
        return out.flush().context("cannot write the page to stdout");
    }
    write_file("--html", file, page.as_bytes())
}

/// A file a flag names, written atomically beside where it goes.
fn write_file(flag: &str, file: &Path, bytes: &[u8]) -> Result<()> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .with_context(|| format!("{flag} {}: not a file name", file.display()))?;
    publish::write_atomically(dir, &name.to_string_lossy(), bytes)
}

const NOTIFY_STATE: &str = "notify.json";

/// The last round of notifications; none (or an unreadable one) counts as
/// nothing sent and nothing failed.
fn read_notify_state(root: &Path) -> notify::State {
    read_json(root, NOTIFY_STATE)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Sends the report's message to every target the level lets through and
/// keeps the outcome in notify.json. Nothing here can fail the report: every
/// problem is a warning. Returns the count of failures ever.
fn send_notifications(
    cli: &Cli,
    level: notify::Level,
    report: &report::Report,
    report_json: &str,
) -> u64 {
    let root = &cli.tree.backup_dir;
    let previous = read_notify_state(root).failures_total;
    let (targets, problems) = match notify::targets_from_env() {
        Ok(t) => t,
        Err(e) => {
            warn(&format!("no notification sent: {e}"));
            return previous;
        }
    };
    // A target that cannot be parsed is a failed delivery: said, counted,
    // and no reason to silence the others.
    for p in &problems {
        warn(&format!("not notified: {p}; check BACKUP_NOTIFY_URLS"));
    }
    let previous = previous + problems.len() as u64;
    if targets.is_empty() && problems.is_empty() {
        return previous;
    }
    let sender = match notify::send::Sender::new(
        std::env::var("BACKUP_NOTIFY_API_ROOT")
            .ok()
            .filter(|r| !r.is_empty()),
    ) {
        Ok(s) => s,
        Err(e) => {
            warn(&format!("no notification sent: {e}"));
            return previous;
        }
    };
    let message = notify::message::compose(report, &backup_common::audit::host());
    let delivery = notify::send::Delivery {
        message: &message,
        report_json,
    };
    let (mut state, lines) = notify::deliver(&targets, level, report, &delivery, &sender, previous);
    state
        .failed
        .extend(problems.iter().map(|p| notify::Failure {
            target: p.split(": ").take(2).collect::<Vec<_>>().join(": "),
            error: p.clone(),
        }));
    for line in lines {
        log::log(COMPONENT, &line);
    }
    if !state.sent.is_empty() || !state.failed.is_empty() {
        warn_if_failed(
            serde_json::to_vec_pretty(&state)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| publish::write_atomically(root, NOTIFY_STATE, &bytes)),
        );
    }
    state.failures_total
}

/// The lines of the record files (or stdin), each with where it came from, as
/// bytes: what they hold is judged by `inputs::read`, and invalid UTF-8 never
/// stops the report from being written.
fn read_lines(files: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut lines = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| {
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            lines.push((format!("{name}:{}", i + 1), line.to_vec()));
        }
    };
    if files.is_empty() || files.iter().any(|f| f.as_os_str() == "-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        add("stdin", bytes);
    }
    for f in files.iter().filter(|f| f.as_os_str() != "-") {
        let bytes = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        add(&f.display().to_string(), bytes);
    }
    Ok(lines)
}
