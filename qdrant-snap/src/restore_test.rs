//! `restore-test`: every collection of an archive restored under a scratch
//! name, its points count checked against the manifest (by `run_restore`), and
//! deleted again. backup-verify --restore-test runs it.

use crate::api::Qdrant;
use crate::backup::COMPONENT;
use crate::cli::{RestoreArgs, RestoreTestArgs};
use crate::restore::{manifest_of, run_restore};
use anyhow::Result;
use backup_common::crypt::Decryption;

pub fn restore_test(args: &RestoreTestArgs, api: &Qdrant, decryption: &Decryption) -> Result<()> {
    let manifest = manifest_of(&std::fs::canonicalize(&args.file)?, decryption)?;
    for c in &manifest.collections {
        let scratch = format!("{}_verify_{}", c.name, std::process::id());
        let restore = RestoreArgs {
            file: args.file.clone(),
            server: args.server.clone(),
            collections: vec![c.name.clone()],
            rename: Some(scratch.clone()),
            // A drill never takes the live collection's aliases.
            aliases: false,
            no_aliases: true,
        };
        let restored = run_restore(&restore, api, decryption);
        // The scratch collection goes whatever happened.
        let _ = api.delete_collection(&scratch);
        restored?;
    }
    println!(
        "{}",
        serde_json::json!({
            "component": COMPONENT, "action": "restore-test", "status": "success",
            "file": args.file.file_name().map(|n| n.to_string_lossy().into_owned()),
            "collections": manifest.collections.len(),
        })
    );
    Ok(())
}
