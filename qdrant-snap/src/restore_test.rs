//! `restore-test`: every collection of an archive restored under a scratch
//! name, its points count checked against the manifest (by `run_restore`),
//! the aliases the backup recorded recreated under scratch names on it and
//! read back, and all of it deleted again — after a pass, a failure, or a
//! signal. backup-verify --restore-test runs it.

use crate::api::Qdrant;
use crate::backup::COMPONENT;
use crate::cli::{RestoreArgs, RestoreTestArgs};
use crate::restore::{manifest_of, run_restore};
use anyhow::{bail, Result};
use backup_common::cleanup;
use backup_common::crypt::Decryption;

pub fn restore_test(args: &RestoreTestArgs, api: &Qdrant, decryption: &Decryption) -> Result<()> {
    let started = std::time::Instant::now();
    let manifest = manifest_of(&std::fs::canonicalize(&args.file)?, decryption)?;
    // Deleting a collection deletes its aliases too.
    let server = args.server.clone();
    let scratch_target = cleanup::Scratch::watch(COMPONENT, "collection", move |name| {
        server.connect()?.delete_collection(name)
    })?;
    let (mut points, mut aliases) = (0u64, 0usize);
    for c in &manifest.collections {
        let scratch = format!("{}_verify_{}", c.name, std::process::id());
        scratch_target.set(Some(&scratch));
        let restore = RestoreArgs {
            file: args.file.clone(),
            server: args.server.clone(),
            collections: vec![c.name.clone()],
            rename: Some(scratch.clone()),
            // A drill never takes the live collection's aliases.
            aliases: false,
            no_aliases: true,
        };
        let drilled = run_restore(&restore, api, decryption).and_then(|_| {
            cleanup::failpoint("restore-test::restored");
            check_aliases(api, &c.aliases, &scratch)
        });
        // The scratch collection (and its aliases) go whatever happened.
        let removed = api.delete_collection(&scratch);
        scratch_target.set(None);
        drilled?;
        removed?;
        points += c.points_count;
        aliases += c.aliases.len();
    }
    println!(
        "{}",
        serde_json::json!({
            "component": COMPONENT, "action": "restore-test", "status": "success",
            "file": args.file.file_name().map(|n| n.to_string_lossy().into_owned()),
            "collections": manifest.collections.len(), "points": points, "aliases": aliases,
            "compared": ["points_count", "aliases"],
            "duration_seconds": started.elapsed().as_secs(),
        })
    );
    Ok(())
}

/// Each alias the backup recorded for the collection, recreated under a
/// scratch name on the scratch collection and read back from the server: the
/// restore's alias step works with what the backup holds, and the live
/// aliases are never touched.
fn check_aliases(api: &Qdrant, recorded: &[String], scratch: &str) -> Result<()> {
    let suffix = format!("_verify_{}", std::process::id());
    for alias in recorded {
        api.point_alias(&format!("{alias}{suffix}"), scratch)?;
    }
    let listed = api.list_aliases()?;
    for alias in recorded {
        let name = format!("{alias}{suffix}");
        if !listed.iter().any(|(a, c)| *a == name && c == scratch) {
            bail!("the recorded alias {alias} could not be recreated on the restored collection (as {name})");
        }
    }
    Ok(())
}
