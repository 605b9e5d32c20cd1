//! The one walk of a MinIO chain (`backup_formats::minio::bases`) over real
//! archives on disk.

use backup_common::crypt::Decryption;
use backup_formats::minio::bases;

fn none() -> Decryption {
    Decryption::default()
}
use test_harness::minio_manifest_archive as archive;

const FULL: &str = "docs_20240101_000000.tar.gz";
const INCR: &str = "docs_20240102_000000.incr.tar.gz";

#[test]
fn a_chain_runs_through_backups_to_a_full_one() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), FULL, "docs", None, false);
    archive(dir.path(), INCR, "docs", Some(FULL), false);
    assert_eq!(
        bases(dir.path(), Some(INCR.into()), &none()).unwrap(),
        [INCR, FULL]
    );
    assert!(bases(dir.path(), None, &none()).unwrap().is_empty());
}

#[test]
fn a_link_without_its_sidecar_or_missing_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), FULL, "docs", None, true);
    let err = bases(dir.path(), Some(FULL.into()), &none())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no .sha256 sidecar and so is not a backup"),
        "{err}"
    );
    let err = bases(dir.path(), Some(INCR.into()), &none())
        .unwrap_err()
        .to_string();
    assert!(err.contains("which it builds on, is missing"), "{err}");
}
