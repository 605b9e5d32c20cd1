use clap::Parser;

fn main() {
    // First of all: from here on a signal is answered, never a silent death.
    backup_common::tool::watch_signals(qdrant_snap::backup::COMPONENT);
    std::process::exit(qdrant_snap::run(qdrant_snap::cli::Cli::parse()));
}
