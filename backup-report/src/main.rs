use clap::Parser;

fn main() {
    // First of all: from here on a signal is answered, never a silent death.
    backup_common::tool::watch_signals(backup_report::COMPONENT);
    std::process::exit(backup_report::run(backup_report::Cli::parse()));
}
