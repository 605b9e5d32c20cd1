//! n8n-export: n8n workflows (and, through the CLI, credentials) into the
//! backup tree, and back into n8n.

pub mod cli;
pub mod source;
pub mod workflows;

pub use cli::Cli;

use anyhow::{Context, Result};
use backup_common::audit;
use backup_common::crypt::{Decryption, Encryption};
use backup_common::tool::{self, BackupRun};
use backup_common::{lock, log, publish, secret, sidecar, PendingArtifact, ResultRecord};
use cli::{BackupArgs, Cmd, RestoreArgs, Source};
use serde_json::Value;
use source::{Api, N8nCli};
use std::io::Write;
use std::path::Path;

pub const COMPONENT: &str = "n8n";

/// Runs the parsed command line; returns the process exit code. How n8n is
/// reached (and the API key) is resolved here, once, inside the run so that a
/// missing key is the run's failure record.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Cmd::Backup(args) => {
            let to_stdout = args.output.to_stdout();
            tool::run_backup(COMPONENT, to_stdout, |run| {
                let mode = mode(&args.source)?;
                backup(run, &args, &mode, &Encryption::from_env()?)
            })
        }
        Cmd::Restore(args) => {
            let subject = audit::Subject {
                artifacts: vec![args.file.clone()],
                target: format!(
                    "{} of n8n {}",
                    if args.credentials {
                        "credentials"
                    } else {
                        "workflows"
                    },
                    match args.source.cli.as_deref().filter(|c| !c.trim().is_empty()) {
                        Some(_) => "through N8N_CLI".to_owned(),
                        None => format!("at {}", args.source.url),
                    }
                ),
            };
            audit::run_restore(COMPONENT, "restore", subject, || {
                if args.credentials {
                    restore_credentials_command(&args)
                } else {
                    restore(&args, mode(&args.source)?, &Decryption::from_env(COMPONENT))
                }
            })
        }
    }
}

/// `restore --credentials`: CLI mode and the key are required.
fn restore_credentials_command(args: &RestoreArgs) -> Result<()> {
    let Mode::Cli(cli) = mode(&args.source)? else {
        return Err(backup_common::usage(
            "restore --credentials needs N8N_CLI: n8n's API cannot write credentials",
        ));
    };
    let key = secret::from_env(ENCRYPTION_KEY)?.ok_or_else(|| {
        backup_common::usage(format!(
            "restore --credentials needs {ENCRYPTION_KEY} (or {ENCRYPTION_KEY}_FILE): the key of \
             the n8n that made the backup, to check the credentials decrypt before anything is \
             imported"
        ))
    })?;
    restore_credentials(args, &cli, &key, &Decryption::from_env(COMPONENT))
}

enum Mode {
    Api(Api),
    Cli(N8nCli),
}

fn mode(source: &Source) -> Result<Mode> {
    match source.cli.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(prefix) => Ok(Mode::Cli(N8nCli::parse(
            prefix,
            source
                .cli_temp_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
        )?)),
        None => Ok(Mode::Api(Api::new(
            &source.url,
            secret::required("N8N_API_KEY")?,
            &source.timeouts,
        )?)),
    }
}

/// The workflows as the backup stores them: validated, sorted by id, compact
/// JSON as `n8n export:workflow --all` writes it.
fn workflows_json(mode: &Mode) -> Result<(Vec<u8>, usize)> {
    let list = match mode {
        Mode::Api(api) => api.list_all()?,
        Mode::Cli(cli) => {
            let temp = cli.temp_file("workflows")?;
            match cli.export("workflow", "workflows", &temp)? {
                Some(value) => workflows::validate(&value)?.clone(),
                None => Vec::new(),
            }
        }
    };
    workflows::validate(&Value::Array(list.clone())).context("n8n returned an invalid workflow")?;
    let list = workflows::canonical(list);
    if list.is_empty() {
        log::log(
            COMPONENT,
            "n8n has no workflows; the backup is a valid, empty array",
        );
    }
    let count = list.len();
    let mut bytes = serde_json::to_vec(&Value::Array(list))?;
    bytes.push(b'\n');
    Ok((bytes, count))
}

fn backup(run: &BackupRun, args: &BackupArgs, mode: &Mode, encryption: &Encryption) -> Result<()> {
    if args.credentials && matches!(mode, Mode::Api(_)) {
        return Err(backup_common::usage(
            "--credentials needs N8N_CLI: n8n's API cannot read credentials",
        ));
    }
    if args.output.to_stdout() {
        let mut out = encryption.wrap(std::io::stdout().lock())?;
        out.write_all(&workflows_json(mode)?.0)?;
        out.finish()?.flush()?;
        return Ok(());
    }
    let dir = args.tree.backup_dir.join(COMPONENT);
    publish::ensure_dir(&dir)?;
    let _lock = lock::lock_dir(&dir)?;
    let (bytes, count) = workflows_json(mode)?;
    let credentials = match (&mode, args.credentials) {
        (Mode::Cli(cli), true) => Some(credentials_json(cli)?),
        _ => None,
    };
    // Workflows and credentials are published as one unit: both or neither.
    let mut pending = vec![write_pending(&dir, "workflows", &bytes, encryption)?];
    if let Some((bytes, _)) = &credentials {
        pending.push(write_pending(&dir, "credentials", bytes, encryption)?);
    }
    let published = run
        .publish(pending, |published| {
            let mut record =
                ResultRecord::success(COMPONENT, &published[0]).with("workflows", count);
            if let (Some(creds), Some((_, n))) = (published.get(1), &credentials) {
                record = record
                    .with("credentials_file", creds.file_name.clone())
                    .with("credentials", *n);
            }
            record
        })
        .map_err(|e| publish::disk_full_hint(e, &dir))?;
    log::log(
        COMPONENT,
        &format!("published {} ({count} workflows)", published[0].file_name),
    );
    if let (Some(creds), Some((_, n))) = (published.get(1), &credentials) {
        log::log(
            COMPONENT,
            &format!(
                "published {} ({n} credentials, encrypted as n8n stores them; restoring them needs the same N8N_ENCRYPTION_KEY)",
                creds.file_name
            ),
        );
    }
    Ok(())
}

/// Credentials as n8n stores them: encrypted, never `--decrypted`.
fn credentials_json(cli: &N8nCli) -> Result<(Vec<u8>, usize)> {
    let temp = cli.temp_file("credentials")?;
    let list = match cli.export("credentials", "credentials", &temp)? {
        Some(Value::Array(list)) => list,
        Some(_) => anyhow::bail!("n8n CLI export:credentials did not write a JSON array"),
        None => Vec::new(),
    };
    backup_formats::n8n::validate_credentials(&Value::Array(list.clone()))
        .map_err(|e| e.context("refusing to store the credentials"))?;
    let n = list.len();
    let mut bytes = serde_json::to_vec(&Value::Array(workflows::canonical(list)))?;
    bytes.push(b'\n');
    Ok((bytes, n))
}

fn write_pending(
    dir: &Path,
    prefix: &str,
    bytes: &[u8],
    encryption: &Encryption,
) -> Result<PendingArtifact> {
    let mut pending = PendingArtifact::create_now(dir, prefix, "json", encryption)?;
    pending
        .write_all(bytes)
        .with_context(|| format!("cannot write {}", pending.temp_path().display()))
        .map_err(|e| publish::disk_full_hint(e, dir))?;
    Ok(pending)
}

/// n8n's own variable for the key it encrypts credentials with.
pub const ENCRYPTION_KEY: &str = "N8N_ENCRYPTION_KEY";

/// A backup file, its sidecar checked and its content (decrypted when
/// sealed with age) read as JSON; and whether a sidecar was there to check.
fn read_backup(path: &Path, decryption: &Decryption) -> Result<(std::path::PathBuf, Value, bool)> {
    let sidecar::Checked {
        path: file,
        file: input,
        sha256: checked,
    } = sidecar::check(path)?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let input = backup_common::progress::reading(&format!("reading {name}"), input);
    let mut input = decryption.reader(input, &name)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut input, &mut text)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    Ok((file, value, checked.is_some()))
}

/// `restore --credentials`: every credential checked to decrypt with `key`
/// first (nothing is imported otherwise), imported as stored with its id, and
/// each id then read back from n8n.
fn restore_credentials(
    args: &RestoreArgs,
    cli: &N8nCli,
    key: &backup_common::Secret,
    decryption: &Decryption,
) -> Result<()> {
    let started = std::time::Instant::now();
    let (file, value, checked) = read_backup(&args.file, decryption)?;
    let count = backup_formats::n8n::check_credentials_key(&value, key.expose())
        .with_context(|| format!("{}: nothing was imported", file.display()))?;
    let list = value.as_array().expect("checked as an array");
    let temp = cli.temp_file("import-credentials")?;
    temp.write(&serde_json::to_vec(&value)?)?;
    cli.import_credentials(&temp)?;
    // The CLI's exit status is not all it says: the ids are read back.
    let back = cli.temp_file("credentials-now")?;
    let now = cli.export("credentials", "credentials", &back)?;
    let now_ids: std::collections::BTreeSet<&str> = now
        .as_ref()
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    if let Some(missing) = list
        .iter()
        .filter_map(|c| c["id"].as_str())
        .find(|id| !now_ids.contains(id))
    {
        anyhow::bail!(
            "n8n CLI import:credentials ended, yet credential {missing} is not in n8n; see n8n's log"
        );
    }
    log::log(
        COMPONENT,
        &format!(
            "restored {count} credentials from {} (ids kept)",
            file.display()
        ),
    );
    println!(
        "{}",
        serde_json::json!({
            "component": COMPONENT, "action": "restore-credentials", "status": "success",
            "file": file.file_name().map(|n| n.to_string_lossy().into_owned()),
            "sha256_checked": checked, "credentials": count,
            "duration_seconds": started.elapsed().as_secs(),
        })
    );
    Ok(())
}

fn restore(args: &RestoreArgs, mode: Mode, decryption: &Decryption) -> Result<()> {
    let started = std::time::Instant::now();
    let (file, value, checked) = read_backup(&args.file, decryption)?;
    let list = workflows::validate(&value)
        .with_context(|| format!("{} is not a workflow backup", file.display()))?;
    let (mut created, mut updated) = (0usize, 0usize);
    match mode {
        Mode::Cli(cli) => {
            // The CLI keeps ids; a copy decides which workflows come back active.
            let temp = cli.temp_file("import")?;
            temp.write(&serde_json::to_vec(&workflows::with_active(
                list,
                args.activate,
            ))?)?;
            cli.import_workflows(&temp)?;
            updated = list.len();
        }
        Mode::Api(api) => {
            for w in list {
                let id = workflows::id(w);
                let body = workflows::api_body(w);
                let target = if api.exists(&id)? {
                    api.update(&id, &body)?;
                    updated += 1;
                    id
                } else {
                    let new_id = api.create(&body)?;
                    log::log(
                        COMPONENT,
                        &format!("created workflow {id} as {new_id} (the API assigns new ids)"),
                    );
                    created += 1;
                    new_id
                };
                if args.activate && w["active"] == Value::Bool(true) {
                    api.activate(&target)?;
                }
            }
        }
    }
    log::log(
        COMPONENT,
        &format!(
            "restored {} workflows from {} ({created} created, {updated} updated)",
            list.len(),
            file.display()
        ),
    );
    println!(
        "{}",
        serde_json::json!({
            "component": COMPONENT, "action": "restore", "status": "success",
            "file": file.file_name().map(|n| n.to_string_lossy().into_owned()),
            "sha256_checked": checked, "workflows": list.len(),
            "created": created, "updated": updated, "activated": args.activate,
            "duration_seconds": started.elapsed().as_secs(),
        })
    );
    Ok(())
}
