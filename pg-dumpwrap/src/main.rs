use clap::Parser;

fn main() {
    // First of all: from here on a signal is answered, never a silent death.
    backup_common::tool::watch_signals(pg_dumpwrap::dump::COMPONENT);
    let cli = pg_dumpwrap::cli::Cli::parse();
    std::process::exit(pg_dumpwrap::run(cli));
}
