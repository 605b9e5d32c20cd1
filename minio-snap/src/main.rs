use clap::Parser;

fn main() {
    std::process::exit(minio_snap::run(minio_snap::cli::Cli::parse()));
}
