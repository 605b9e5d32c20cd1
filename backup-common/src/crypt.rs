//! Encryption at rest with age (the `age` crate: the age-encryption.org/v1
//! format that Debian's `age` and rage read and write).
//!
//! What the operator sets is read once, at the command-line boundary, into an
//! `Encryption` (for backups) or a `Decryption` (for whatever reads artifacts
//! back). An encrypted artifact is the compressed artifact encrypted whole,
//! named `<name>.age`; everything else about it (series, sidecar of the file as
//! it is on disk, latest link with the same suffix) is as for a plain one.

use age::secrecy::SecretString;
use anyhow::{Context, Result};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The suffix of an encrypted artifact's file name (the one `ArtifactName` reads).
pub const SUFFIX: &str = crate::naming::ENCRYPTED_SUFFIX;

pub const RECIPIENTS: &str = "BACKUP_AGE_RECIPIENTS";
pub const RECIPIENTS_FILE: &str = "BACKUP_AGE_RECIPIENTS_FILE";
pub const PASSPHRASE_FILE: &str = "BACKUP_AGE_PASSPHRASE_FILE";
pub const IDENTITY_FILE: &str = "BACKUP_AGE_IDENTITY_FILE";

/// How new artifacts are written.
pub enum Encryption {
    Off,
    /// To age or SSH public keys: the backup host can encrypt, not decrypt.
    Recipients(Vec<Box<dyn age::Recipient + Send>>),
    /// To a passphrase (age's scrypt recipient), like `gpg --symmetric`.
    Passphrase(SecretString),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encryption::Off => "Encryption::Off",
            Encryption::Recipients(_) => "Encryption::Recipients(..)",
            Encryption::Passphrase(_) => "Encryption::Passphrase(***)",
        })
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Encryption {
    /// From BACKUP_AGE_RECIPIENTS / BACKUP_AGE_RECIPIENTS_FILE or
    /// BACKUP_AGE_PASSPHRASE_FILE; none set is `Off`. Both kinds set is a usage
    /// error: one age file cannot be opened by both.
    pub fn from_env() -> Result<Encryption> {
        let recipients = var(RECIPIENTS);
        let recipients_file = var(RECIPIENTS_FILE);
        let passphrase_file = var(PASSPHRASE_FILE);
        if passphrase_file.is_some() && (recipients.is_some() || recipients_file.is_some()) {
            return Err(crate::usage(format!(
                "{PASSPHRASE_FILE} and {RECIPIENTS}/{RECIPIENTS_FILE} are both set; \
                 age encrypts to a passphrase or to recipients, not both: set one"
            )));
        }
        if let Some(file) = passphrase_file {
            return Ok(Encryption::Passphrase(read_passphrase(
                Path::new(&file),
                PASSPHRASE_FILE,
            )?));
        }
        if recipients.is_none() && recipients_file.is_none() {
            return Ok(Encryption::Off);
        }
        let strings: Vec<String> = recipients
            .iter()
            .flat_map(|r| r.split([',', '\n']))
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        let files: Vec<String> = recipients_file.into_iter().collect();
        let parsed = age::cli_common::read_recipients(
            strings,
            files,
            Vec::new(),
            None,
            &mut age::cli_common::StdinGuard::new(false),
        )
        .map_err(|e| crate::usage(format!("{RECIPIENTS}/{RECIPIENTS_FILE}: {e}")))?;
        if parsed.is_empty() {
            return Err(crate::usage(format!(
                "{RECIPIENTS}/{RECIPIENTS_FILE} name no recipient"
            )));
        }
        Ok(Encryption::Recipients(parsed))
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, Encryption::Off)
    }

    /// `ext` with the encrypted suffix when encryption is on.
    pub fn ext(&self, ext: &str) -> String {
        if self.is_on() {
            format!("{ext}{SUFFIX}")
        } else {
            ext.to_owned()
        }
    }

    /// A writer that encrypts into `inner` (or passes through when off); call
    /// `finish` to write age's last chunk.
    pub fn wrap<W: Write>(&self, inner: W) -> Result<Sealed<W>> {
        let encryptor = match self {
            Encryption::Off => return Ok(Sealed::Plain(inner)),
            Encryption::Recipients(recipients) => age::Encryptor::with_recipients(
                recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
            )
            .context("cannot encrypt to the configured recipients")?,
            Encryption::Passphrase(passphrase) => {
                age::Encryptor::with_user_passphrase(passphrase.clone())
            }
        };
        Ok(Sealed::Age(
            encryptor
                .wrap_output(inner)
                .context("cannot start the encrypted stream")?,
        ))
    }
}

/// The writing end of an artifact: plain, or encrypting with age.
pub enum Sealed<W: Write> {
    Plain(W),
    Age(age::stream::StreamWriter<W>),
}

impl<W: Write> Sealed<W> {
    /// Ends the stream (age's final chunk) and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Sealed::Plain(w) => Ok(w),
            Sealed::Age(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Sealed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sealed::Plain(w) => w.write(buf),
            Sealed::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sealed::Plain(w) => w.flush(),
            Sealed::Age(w) => w.flush(),
        }
    }
}

/// What reads artifacts back: where the identity (or, for passphrase-encrypted
/// artifacts, the passphrase) is, if anywhere. It is read only when an
/// encrypted artifact is opened, so plain trees need nothing.
#[derive(Debug, Clone, Default)]
pub struct Decryption {
    pub identity_file: Option<PathBuf>,
}

impl Decryption {
    /// From BACKUP_AGE_IDENTITY_FILE; a file that group or others may read gets
    /// a warning naming it.
    pub fn from_env(component: &str) -> Decryption {
        let identity_file = var(IDENTITY_FILE).map(PathBuf::from);
        if let Some(file) = &identity_file {
            warn_if_readable_by_others(component, file, IDENTITY_FILE);
        }
        Decryption { identity_file }
    }

    /// Decrypts `input` (an age file named `name`), or says why not: no
    /// identity (exit 2, naming the variable), or one that does not open it.
    pub fn open<'a, R: Read + 'a>(&self, input: R, name: &str) -> Result<Box<dyn Read + 'a>> {
        let decryptor = age::Decryptor::new(input)
            .map_err(|e| anyhow::anyhow!("{name} is not a valid age file: {e}"))?;
        let Some(file) = &self.identity_file else {
            return Err(crate::usage(format!(
                "{name} is encrypted; set {IDENTITY_FILE} to the age identity file \
                 (or the passphrase file) that opens it"
            )));
        };
        let reader = if decryptor.is_scrypt() {
            let identity = age::scrypt::Identity::new(read_passphrase(file, IDENTITY_FILE)?);
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        } else {
            let identities = age::cli_common::read_identities(
                vec![file.to_string_lossy().into_owned()],
                None,
                &mut age::cli_common::StdinGuard::new(false),
            )
            .map_err(|e| crate::usage(format!("{IDENTITY_FILE} ({}): {e}", file.display())))?;
            decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        }
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot decrypt {name}: {e} — check that {IDENTITY_FILE} holds the key (or passphrase) it was encrypted to"
            )
        })?;
        Ok(Box::new(reader))
    }

    /// `input` as plaintext: decrypted if `name` says it is encrypted.
    pub fn reader<'a, R: Read + 'a>(&self, input: R, name: &str) -> Result<Box<dyn Read + 'a>> {
        if is_encrypted(name) {
            self.open(input, name)
        } else {
            Ok(Box::new(input))
        }
    }

    pub fn has_identity(&self) -> bool {
        self.identity_file.is_some()
    }
}

/// Whether a file name is an encrypted artifact's.
pub fn is_encrypted(name: &str) -> bool {
    name.ends_with(SUFFIX)
}

/// Whether `input` starts with a well-formed age header (what can be checked
/// without the identity).
pub fn check_header(input: impl Read) -> Result<()> {
    age::Decryptor::new(input)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("not a valid age file: {e}"))
}

/// A passphrase file: its first line, trailing newline dropped.
fn read_passphrase(file: &Path, var: &str) -> Result<SecretString> {
    warn_if_readable_by_others("age", file, var);
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {var} ({})", file.display()))
        .map_err(|e| crate::usage(format!("{e:#}")))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(crate::usage(format!("{var} ({}) is empty", file.display())));
    }
    crate::secret::Secret::new(line.to_owned());
    Ok(SecretString::from(line.to_owned()))
}

fn warn_if_readable_by_others(component: &str, file: &Path, var: &str) {
    if let Ok(meta) = std::fs::metadata(file) {
        if meta.permissions().mode() & 0o077 != 0 {
            crate::log::log(
                component,
                &format!(
                    "warning: {var} ({}) can be read by group or others; chmod 600 it",
                    file.display()
                ),
            );
        }
    }
}
