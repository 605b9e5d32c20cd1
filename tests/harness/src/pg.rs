//! A throwaway PostgreSQL cluster: initdb into a temp folder, a random loopback
//! port, scram-sha-256 password authentication. initdb refuses to run as root,
//! so under root the server runs as `nobody`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const SUPERUSER: &str = "postgres";

pub struct PgCluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    pub port: u16,
    pub password: String,
    running: bool,
}

/// The folder holding initdb, pg_ctl and postgres: `$PG_BINDIR`, else what
/// `pg_config --bindir` says, else the newest `/usr/lib/postgresql/*/bin`.
pub fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|d| d.join("initdb").exists());
    found.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("PostgreSQL server binaries (initdb) not found; set PG_BINDIR")
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix("bk-pg-")
            .tempdir()
            .expect("tempdir");
        let bindir = bindir();
        let password = format!("pw-{}-{}", std::process::id(), crate::free_port());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).unwrap();
        if crate::is_root() {
            for p in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
            }
        }
        let data = dir.path().join("data");
        let mut cluster = PgCluster {
            dir,
            bindir,
            port: 0,
            password,
            running: false,
        };
        let out = cluster
            .server_command("initdb")
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.port = crate::free_port();
        cluster.pg_ctl_start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.stdin(Stdio::null()).env_remove("PGPASSWORD");
        if crate::is_root() {
            cmd.uid(65534).gid(65534).current_dir(self.dir.path());
        }
        cmd
    }

    fn pg_ctl_start(&mut self) {
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &opts, "-w", "-t", "60", "-l"])
            .arg(&log)
            .arg("start")
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stops the server at once (as a crash would).
    pub fn stop(&mut self) {
        if self.running {
            let _ = self
                .server_command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
            self.running = false;
        }
    }

    /// `t` with the POSTGRES_* variables that reach this cluster (database: `POSTGRES_DB`
    /// is left to the caller), and the cluster's own client programs first on PATH.
    pub fn connect(&self, t: crate::Tool) -> crate::Tool {
        let path = format!(
            "{}:{}",
            self.bin("pg_dump").parent().unwrap().display(),
            t.env
                .get("PATH")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        t.env("PATH", path)
            .env("POSTGRES_HOST", "127.0.0.1")
            .env("POSTGRES_PORT", self.port.to_string())
            .env("POSTGRES_USER", SUPERUSER)
            .env("POSTGRES_PASSWORD", &self.password)
    }

    pub fn bin(&self, program: &str) -> PathBuf {
        self.bindir.join(program)
    }

    /// A client command (psql, pg_dump, ...) connected as the superuser to `db`.
    pub fn client(&self, program: &str, db: &str) -> Command {
        let mut cmd = Command::new(self.bin(program));
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env("PGPASSWORD", &self.password)
            .env("PGDATABASE", db);
        cmd
    }

    /// Runs SQL in `db`; panics on any error; returns psql's unaligned output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self
            .client("psql", db)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// Runs an SQL script from a file in `db`, in one transaction.
    pub fn sql_file(&self, db: &str, file: &Path) {
        let out = self
            .client("psql", db)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-f",
            ])
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn create_db(&self, db: &str) {
        self.sql("postgres", &format!("CREATE DATABASE \"{db}\""));
    }

    /// The database's schema and data as plain SQL, without the lines that differ
    /// between two dumps of equal databases (versions, the random `\restrict` key).
    pub fn comparable_dump(&self, db: &str) -> String {
        let out = self
            .client("pg_dump", db)
            .args(["--no-owner", "--no-acl"])
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("dump is UTF-8")
            .lines()
            .filter(|l| {
                !l.starts_with("-- Dumped from")
                    && !l.starts_with("-- Dumped by")
                    && !l.starts_with("\\restrict ")
                    && !l.starts_with("\\unrestrict ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
