//! A real SMTP server (aiosmtpd, from PyPI) that requires STARTTLS and AUTH,
//! with a throwaway CA: the client under test must verify the certificate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct SmtpServer {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// The Python that has aiosmtpd (scripts/test.sh installs it).
fn python() -> PathBuf {
    std::env::var_os("AIOSMTPD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/backup-kit/aiosmtpd/bin/python"))
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let python = python();
        assert!(
            python.exists(),
            "{} is missing: run scripts/test.sh, which installs aiosmtpd",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A CA, and the server's certificate for 127.0.0.1 signed by it.
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=backup-kit test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            d,
        );
        openssl(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
            d,
        );
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.pem",
            ],
            d,
        );
        let out = d.join("mail");
        std::fs::create_dir(&out).unwrap();
        let user = "backup@example.org".to_owned();
        let password = format!("smtp-pw-{}", fastrand::u64(..));
        let port = crate::free_port();
        let mut child = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/smtp.py"))
            .arg(d.join("server.pem"))
            .arg(d.join("server.key"))
            .arg(&out)
            .arg(&user)
            .arg(&password)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            format!("ready {port}"),
            "aiosmtpd did not start"
        );
        SmtpServer {
            child,
            dir,
            port,
            user,
            password,
        }
    }

    /// The CA that signed the server's certificate (for SSL_CERT_FILE).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every mail received so far, in order, as the server wrote it.
    pub fn mails(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
