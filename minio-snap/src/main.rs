use clap::Parser;

fn main() {
    // First of all: from here on a signal is answered, never a silent death.
    backup_common::tool::watch_signals(minio_snap::backup::COMPONENT);
    std::process::exit(minio_snap::run(minio_snap::cli::Cli::parse()));
}
