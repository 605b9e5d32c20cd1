use clap::Parser;

fn main() {
    std::process::exit(backup_prune::run(backup_prune::cli::Cli::parse()));
}
