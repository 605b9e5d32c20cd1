use clap::Parser;

fn main() {
    // First of all: from here on a signal is answered, never a silent death.
    backup_common::tool::watch_signals(n8n_export::COMPONENT);
    std::process::exit(n8n_export::run(n8n_export::Cli::parse()));
}
