use clap::Parser;

fn main() {
    std::process::exit(qdrant_snap::run(qdrant_snap::cli::Cli::parse()));
}
