//! backup-verify: decode, hash and check artifacts; optionally restore the
//! newest ones into scratch targets and compare them with what was recorded.

pub mod check;
pub mod plan;
pub mod restore_test;
pub mod select;

use anyhow::Result;
use backup_common::crypt::Decryption;
use backup_common::sidecar;
use check::Kind;
use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const COMPONENT: &str = "verify";

#[derive(Debug, Parser)]
#[command(
    name = "backup-verify",
    version,
    about = "Check backups: every gzip member decodes, sidecars and manifests match, dumps are complete",
    after_help = "Prints `OK <path>` or `FAIL <path>: <reason>` per artifact (--json: JSON lines); exits 1 if any fails."
)]
pub struct Cli {
    /// Artifacts to check; default: every *_latest artifact and the newest weekly folder
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    /// Check every artifact in the tree
    #[arg(long, conflicts_with_all = ["paths", "records"])]
    pub all: bool,
    /// Also check the artifact a file of result records (a tool's stdout) says
    /// was published (repeatable)
    #[arg(long = "record", value_name = "FILE")]
    pub records: Vec<PathBuf>,
    /// One JSON object per artifact instead of OK/FAIL lines
    #[arg(long)]
    pub json: bool,
    /// Also drill a restore of the newest backup of every series into scratch
    /// targets and compare it with what the backup recorded: each database
    /// (and the globals, rolled back), each bucket's chain, the Qdrant
    /// collections and aliases (the tools' `restore-test`, with the usual
    /// POSTGRES_*, MINIO_*, QDRANT_* settings), n8n's files (credentials
    /// decrypted with N8N_ENCRYPTION_KEY when given); writes restore_test.json
    #[arg(long)]
    pub restore_test: bool,
    /// With --restore-test: drill what this point holds (`latest`,
    /// `weekly/YYYY_WNN`, `YYYYMMDD_HHMMSS`)
    #[arg(long, value_name = "POINT", requires = "restore_test")]
    pub drill_from: Option<String>,
    /// Instead: the plan of a restore of the stack from POINT (`latest`,
    /// `weekly/YYYY_WNN`, `YYYYMMDD_HHMMSS`: each series' newest backup at or
    /// before it), every file it uses checked first (verdicts on stderr). On
    /// stdout, in restore order, one step per line: component, step, series,
    /// path and date, tab-separated (--json: objects; --null: each field
    /// ended by a NUL, for scripts). What the point lacks or the plan skips
    /// (a series or component missing, an artifact without sidecar, a link, a
    /// file dated in the future) is named on stderr and fails the plan unless
    /// --allow-missing. Exit 1 if any check fails.
    #[arg(long, value_name = "POINT", conflicts_with_all = ["paths", "all", "records", "restore_test"])]
    pub plan: Option<String>,
    /// With --plan: restore what there is although the point lacks something
    /// (each gap is still named)
    #[arg(long, requires = "plan")]
    pub allow_missing: bool,
    /// With --plan: every field of every step ended by a NUL byte (no name
    /// can forge a step)
    #[arg(long, requires = "plan", conflicts_with = "json")]
    pub null: bool,
    /// With --plan or --restore-test: only this component (repeatable;
    /// default: all of them)
    #[arg(long = "component", value_name = "NAME",
          value_parser = ["postgres", "minio", "qdrant", "n8n"])]
    pub components: Vec<String>,
}

impl Cli {
    /// `--component`s, or every component.
    pub fn selected_components(&self) -> Vec<backup_common::Component> {
        if self.components.is_empty() {
            return backup_common::Component::ALL.to_vec();
        }
        self.components
            .iter()
            .filter_map(|c| backup_common::Component::from_name(c))
            .collect()
    }
}

/// The verdict on one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub path: PathBuf,
    pub kind: Option<&'static str>,
    pub failure: Option<String>,
    /// An encrypted artifact checked without its identity: only its sidecar
    /// and its age header could be (a distinct verdict, never a full "OK").
    pub header_only: bool,
    /// A drill's one-line account (what was restored and compared, how long).
    pub detail: Option<String>,
    /// A drill's report, as the tool printed it (`--json`).
    pub drill: Option<serde_json::Value>,
}

impl Verdict {
    fn line(&self, json: bool) -> String {
        if json {
            let mut v = serde_json::json!({
                "path": self.path.to_string_lossy(),
                "status": if self.failure.is_none() { "ok" } else { "fail" },
            });
            if let Some(k) = self.kind {
                v["kind"] = k.into();
            }
            if let Some(f) = &self.failure {
                v["reason"] = f.as_str().into();
            }
            if self.header_only {
                v["checked"] = "sidecar and age header only (encrypted; no identity)".into();
            }
            if let Some(d) = &self.drill {
                v["drill"] = d.clone();
            }
            v.to_string()
        } else {
            match &self.failure {
                None if self.header_only => format!(
                    "OK (encrypted: sidecar and header only) {}",
                    self.path.display()
                ),
                None => match &self.detail {
                    Some(detail) => format!("OK {} — {detail}", self.path.display()),
                    None => format!("OK {}", self.path.display()),
                },
                Some(reason) => format!("FAIL {}: {reason}", self.path.display()),
            }
        }
    }
}

/// What opens the artifacts: the age identity (BACKUP_AGE_IDENTITY_FILE), and
/// n8n's encryption key (N8N_ENCRYPTION_KEY / _FILE), with which a
/// credentials backup is checked to decrypt.
#[derive(Default)]
pub struct Keys {
    pub age: Decryption,
    pub n8n: Option<backup_common::Secret>,
}

impl Keys {
    pub fn from_env() -> Result<Keys> {
        Ok(Keys {
            age: Decryption::from_env(COMPONENT),
            n8n: backup_common::secret::from_env(N8N_KEY)?,
        })
    }
}

/// n8n's own variable for the key it encrypts credentials with.
pub const N8N_KEY: &str = "N8N_ENCRYPTION_KEY";

/// Checks one artifact: its content by kind and its sidecar, in one read (an
/// encrypted one decrypted on the way, given the identity).
pub fn verify_file(path: &Path, keys: &Keys) -> Verdict {
    let kind = Kind::of(path);
    let mut header_only = false;
    let failure = match kind {
        None => Some(
            "not an artifact this tool knows (postgres/*.sql.gz, qdrant/*.tar.gz, n8n/*.json)"
                .to_owned(),
        ),
        Some(kind) => match verify_kind(path, kind, keys) {
            Ok(checked) => {
                header_only = checked.header_only;
                None
            }
            Err(e) => Some(backup_common::exit::one_line(&e)),
        },
    };
    Verdict {
        path: path.to_owned(),
        kind: kind.map(Kind::name),
        failure,
        header_only,
        detail: None,
        drill: None,
    }
}

fn verify_kind(path: &Path, kind: Kind, keys: &Keys) -> Result<check::Checked> {
    // The tools make one kind of link: `*_latest`, naming a file beside it.
    // One that leads anywhere else (planted, or pulled from a remote) is not
    // followed: verify would otherwise vouch for a file outside the tree.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let to =
            std::fs::read_link(path).map_err(|e| anyhow::anyhow!("cannot read the link: {e}"))?;
        let beside = matches!(
            to.components().collect::<Vec<_>>().as_slice(),
            [std::path::Component::Normal(_)]
        );
        // …and that file is no link itself, leading on elsewhere.
        let named = path.parent().unwrap_or(Path::new(".")).join(&to);
        let chained = std::fs::symlink_metadata(&named).is_ok_and(|m| m.file_type().is_symlink());
        if !beside || chained {
            anyhow::bail!(
                "is a link to {}{}; backup-kit's links name a file beside them, so it is not \
                 followed — remove it",
                to.display(),
                if chained {
                    ", itself a link"
                } else {
                    ", outside its folder"
                }
            );
        }
    }
    let resolved = std::fs::canonicalize(path).map_err(|e| anyhow::anyhow!("cannot open: {e}"))?;
    let expected = sidecar::read(&resolved)?;
    let file = std::fs::File::open(&resolved).map_err(|e| anyhow::anyhow!("cannot open: {e}"))?;
    let name = resolved.file_name().unwrap_or_default().to_string_lossy();
    let checked = check::check(kind, &name, file, keys)?;
    let actual = &checked.sha256;
    match expected {
        None => anyhow::bail!("no .sha256 sidecar"),
        Some(e) if e != *actual => {
            anyhow::bail!("sha256 {actual} does not match the sidecar's {e}")
        }
        Some(_) => {}
    }
    // An incremental is only restorable with every link of its chain.
    let dir = resolved.parent().unwrap_or(Path::new("/"));
    backup_formats::minio::bases(dir, checked.builds_on.clone(), &keys.age)?;
    Ok(checked)
}

/// `--plan`: the steps, each file checked (with its chain) before any is
/// printed; nothing is printed on stdout unless every check passed.
fn print_plan(cli: &Cli, point: &str) -> Result<()> {
    let point = plan::Point::parse(point).map_err(backup_common::usage)?;
    let plan::Plan { steps, gaps } = plan::plan(
        &cli.tree.backup_dir,
        point,
        &cli.selected_components(),
        !cli.components.is_empty(),
    )?;
    for gap in &gaps {
        backup_common::log::log(COMPONENT, &format!("plan: {}", gap.describe()));
    }
    if !gaps.is_empty() && !cli.allow_missing {
        anyhow::bail!(
            "the point lacks or the plan skips {} thing(s), named above; nothing to restore \
             from until they are dealt with — or pass --allow-missing to restore what there is",
            gaps.len()
        );
    }
    let keys = Keys::from_env()?;
    let mut failed = 0;
    for (_, path) in &steps {
        let verdict = verify_file(path, &keys);
        failed += usize::from(verdict.failure.is_some());
        eprintln!("{}", verdict.line(cli.json));
    }
    if failed > 0 {
        anyhow::bail!("{failed} file(s) of the plan failed their check; nothing to restore from");
    }
    let mut out = std::io::stdout().lock();
    for (p, path) in &steps {
        let made = p.made.format("%Y-%m-%d %H:%M:%S").to_string();
        if cli.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"component": p.component.name(), "step": p.step.name(),
                                   "series": p.series, "path": path.to_string_lossy(),
                                   "made": made})
            )?;
        } else if cli.null {
            use std::os::unix::ffi::OsStrExt;
            for field in [
                p.component.name().as_bytes(),
                p.step.name().as_bytes(),
                p.series.as_bytes(),
                path.as_os_str().as_bytes(),
                made.as_bytes(),
            ] {
                out.write_all(field)?;
                out.write_all(b"\0")?;
            }
        } else {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{made}",
                p.component.name(),
                p.step.name(),
                p.series,
                path.display()
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn run(cli: Cli) -> i32 {
    if let Some(point) = &cli.plan {
        return backup_common::tool::run(COMPONENT, "plan", || print_plan(&cli, point));
    }
    backup_common::tool::run(COMPONENT, "verify", || {
        if !cli.components.is_empty() && !cli.restore_test {
            return Err(backup_common::usage(
                "--component goes with --plan or --restore-test",
            ));
        }
        let mut from_records = Vec::new();
        for record in &cli.records {
            for unit in backup_common::record::published_units(record)? {
                let dir = cli.tree.backup_dir.join(unit.component.name());
                // A unit's companions (the cluster's globals, n8n's
                // credentials) were published with it: checked with it.
                for name in std::iter::once(&unit.file).chain(&unit.companions) {
                    from_records.push(dir.join(name));
                }
            }
        }
        let paths = if !cli.paths.is_empty() || !from_records.is_empty() {
            from_records.into_iter().chain(cli.paths.clone()).collect()
        } else if cli.drill_from.is_some() {
            // A drill of a given point: the drills check their own files.
            Vec::new()
        } else if cli.all {
            select::all(&cli.tree.backup_dir)?
        } else {
            select::latest(&cli.tree.backup_dir)?
        };
        if paths.is_empty() && !cli.restore_test {
            anyhow::bail!(
                "no artifacts found in {} — nothing was verified",
                cli.tree.backup_dir.display()
            );
        }
        let keys = Keys::from_env()?;
        let mut failed = 0;
        for path in &paths {
            let verdict = verify_file(path, &keys);
            failed += usize::from(verdict.failure.is_some());
            println!("{}", verdict.line(cli.json));
        }
        if cli.restore_test {
            for verdict in restore_test::run(&cli, &keys)? {
                failed += usize::from(verdict.failure.is_some());
                println!("{}", verdict.line(cli.json));
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} check(s) failed");
        }
        Ok(())
    })
}
