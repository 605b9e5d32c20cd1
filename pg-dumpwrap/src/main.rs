use clap::Parser;

fn main() {
    let cli = pg_dumpwrap::cli::Cli::parse();
    std::process::exit(pg_dumpwrap::run(cli));
}
