//! `.sha256` sidecars in `sha256sum` format: `<hex>  <file name>\n`.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub fn path_of(artifact: &Path) -> PathBuf {
    let mut sidecar = artifact.as_os_str().to_owned();
    sidecar.push(".sha256");
    PathBuf::from(sidecar)
}

/// The hash a sidecar records, or `None` when there is no sidecar.
pub fn read(artifact: &Path) -> Result<Option<String>> {
    let sidecar = path_of(artifact);
    let text = match std::fs::read_to_string(&sidecar) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", sidecar.display())),
    };
    let expected = text
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("{} is not in sha256sum format", sidecar.display()))?;
    Ok(Some(expected.to_ascii_lowercase()))
}

pub fn sha256_of_file(path: &Path) -> Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    sha256_of(file).with_context(|| format!("cannot read {}", path.display()))
}

fn sha256_of(mut input: impl std::io::Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut input, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// An artifact opened for a restore: the handle its hash was taken through,
/// rewound, so what is restored is what was checked (never reopened by path).
#[derive(Debug)]
pub struct Checked {
    pub path: PathBuf,
    pub file: std::fs::File,
    /// The hash the sidecar records, which the content matched; `None` when
    /// there is no sidecar.
    pub sha256: Option<String>,
}

/// Opens `artifact` (a `*_latest` link is resolved first: its sidecar sits
/// beside its target) and compares it with its sidecar when there is one;
/// refuses on mismatch.
pub fn check(artifact: &Path) -> Result<Checked> {
    use std::io::{Seek, SeekFrom};
    let path = std::fs::canonicalize(artifact)
        .with_context(|| format!("cannot open {}", artifact.display()))?;
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let Some(expected) = read(&path)? else {
        return Ok(Checked {
            path,
            file,
            sha256: None,
        });
    };
    let actual = sha256_of(&mut file).with_context(|| format!("cannot read {}", path.display()))?;
    if actual != expected {
        bail!(
            "{} does not match its sidecar (sha256 {actual}, expected {expected}); the file is damaged — refusing to restore it",
            path.display()
        );
    }
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Checked {
        path,
        file,
        sha256: Some(actual),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_through_a_latest_link_and_refuses_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db_20240101_000000.sql.gz");
        std::fs::write(&file, b"abc").unwrap();
        std::fs::write(
            path_of(&file),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  db_20240101_000000.sql.gz\n",
        )
        .unwrap();
        let link = dir.path().join("db_latest.sql.gz");
        std::os::unix::fs::symlink("db_20240101_000000.sql.gz", &link).unwrap();
        let checked = check(&link).unwrap();
        assert_eq!(checked.path, std::fs::canonicalize(&file).unwrap());
        assert!(checked.sha256.is_some());

        std::fs::write(&file, b"abd").unwrap();
        let err = check(&link).unwrap_err().to_string();
        assert!(err.contains("does not match its sidecar"), "{err}");
    }

    #[test]
    fn no_sidecar_is_not_an_error_but_a_bad_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.json");
        std::fs::write(&file, b"[]").unwrap();
        assert_eq!(check(&file).unwrap().sha256, None);
        std::fs::write(path_of(&file), "not a hash\n").unwrap();
        assert!(check(&file)
            .unwrap_err()
            .to_string()
            .contains("not in sha256sum format"));
    }
}
