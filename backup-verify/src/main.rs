use clap::Parser;

fn main() {
    std::process::exit(backup_verify::run(backup_verify::Cli::parse()));
}
