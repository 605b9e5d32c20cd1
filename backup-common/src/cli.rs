//! Flags every tool shares, defined once (ripgrep's way: parsed into typed
//! settings at the boundary). The component tools flatten these into their own
//! command lines.

use clap::Args;
use std::path::PathBuf;

/// Where the backup tree is.
#[derive(Debug, Clone, Args)]
pub struct Tree {
    /// Root of the backup tree
    #[arg(
        long,
        env = "BACKUP_DIR",
        default_value = "/data/backups",
        value_name = "DIR"
    )]
    pub backup_dir: PathBuf,
}

/// `-o -`: the artifact to stdout instead of the tree.
#[derive(Debug, Clone, Args)]
pub struct Output {
    /// `-` writes the artifact to stdout (no file, link, sidecar or record)
    #[arg(short = 'o', long = "output", value_name = "-", value_parser = parse_stdout)]
    output: Option<Stdout>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stdout;

fn parse_stdout(value: &str) -> Result<Stdout, String> {
    match value {
        "-" => Ok(Stdout),
        _ => Err("only `-o -` (stdout) is supported; backups go to --backup-dir".into()),
    }
}

impl Output {
    pub fn to_stdout(&self) -> bool {
        self.output.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        output: Output,
    }

    #[test]
    fn only_a_dash_is_an_output() {
        assert!(Probe::try_parse_from(["x", "-o", "-"])
            .unwrap()
            .output
            .to_stdout());
        assert!(!Probe::try_parse_from(["x"]).unwrap().output.to_stdout());
        assert!(Probe::try_parse_from(["x", "-o", "file.gz"]).is_err());
    }
}
