use clap::Parser;

fn main() {
    std::process::exit(backup_report::run(backup_report::Cli::parse()));
}
