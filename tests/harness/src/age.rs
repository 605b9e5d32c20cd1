//! Keys made by Debian's `age` (an implementation nobody here wrote), for the
//! encryption tests: an identity and its recipient, a passphrase file, and the
//! `age` command line to decrypt and encrypt with.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct AgeKeys {
    dir: tempfile::TempDir,
    /// `age1…`, for BACKUP_AGE_RECIPIENTS.
    pub recipient: String,
}

fn age_bin(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{name} is not installed: run scripts/test.sh (Debian's age package)"
    );
    path
}

impl AgeKeys {
    /// A fresh identity (0600), and a passphrase file beside it.
    pub fn new() -> AgeKeys {
        let dir = tempfile::Builder::new()
            .prefix("bk-age-")
            .tempdir()
            .unwrap();
        let identity = dir.path().join("identity.txt");
        let out = Command::new(age_bin("age-keygen"))
            .arg("-o")
            .arg(&identity)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "age-keygen failed");
        // age-keygen prints "Public key: age1…" on stderr.
        let recipient = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("Public key: ").map(str::to_owned))
            .expect("age-keygen names the public key");
        std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
        let passphrase = dir.path().join("passphrase.txt");
        let words: String = (0..24).map(|_| fastrand::alphanumeric()).collect();
        std::fs::write(&passphrase, format!("correct horse {words}\n")).unwrap();
        std::fs::set_permissions(&passphrase, std::fs::Permissions::from_mode(0o600)).unwrap();
        AgeKeys { dir, recipient }
    }

    pub fn identity_file(&self) -> PathBuf {
        self.dir.path().join("identity.txt")
    }

    pub fn passphrase_file(&self) -> PathBuf {
        self.dir.path().join("passphrase.txt")
    }

    /// `age -d -i identity FILE`: the plaintext, by Debian's age.
    pub fn decrypt_with_cli(&self, file: &Path) -> Vec<u8> {
        let out = Command::new(age_bin("age"))
            .arg("-d")
            .arg("-i")
            .arg(self.identity_file())
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `age -r recipient -o TO FROM`: a file encrypted by Debian's age.
    pub fn encrypt_with_cli(&self, from: &Path, to: &Path) {
        let status = Command::new(age_bin("age"))
            .arg("-r")
            .arg(&self.recipient)
            .arg("-o")
            .arg(to)
            .arg(from)
            .status()
            .unwrap();
        assert!(status.success(), "age -r failed");
    }
}

impl Default for AgeKeys {
    fn default() -> Self {
        Self::new()
    }
}

/// How a test run encrypts: the variables a tool gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Recipients,
    Passphrase,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Recipients, Mode::Passphrase];

    /// The tool, set to encrypt this way (and, with `identity`, to decrypt).
    pub fn apply(self, keys: &AgeKeys, tool: crate::Tool, identity: bool) -> crate::Tool {
        let tool = match self {
            Mode::Recipients => tool.env("BACKUP_AGE_RECIPIENTS", &keys.recipient),
            Mode::Passphrase => tool.env("BACKUP_AGE_PASSPHRASE_FILE", keys.passphrase_file()),
        };
        if !identity {
            return tool;
        }
        let file = match self {
            Mode::Recipients => keys.identity_file(),
            Mode::Passphrase => keys.passphrase_file(),
        };
        tool.env("BACKUP_AGE_IDENTITY_FILE", file)
    }
}

/// The sha256 of a file as `sha256sum` would print it.
pub fn sha256_of(file: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()))
}
