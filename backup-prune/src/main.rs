use clap::Parser;

fn main() {
    // First of all: from here on a signal is answered, never a silent death.
    backup_common::tool::watch_signals(backup_prune::COMPONENT);
    std::process::exit(backup_prune::run(backup_prune::cli::Cli::parse()));
}
