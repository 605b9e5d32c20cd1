use clap::Parser;

fn main() {
    // First of all: from here on a signal is answered, never a silent death.
    backup_common::tool::watch_signals(backup_verify::COMPONENT);
    std::process::exit(backup_verify::run(backup_verify::Cli::parse()));
}
