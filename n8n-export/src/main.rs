use clap::Parser;

fn main() {
    std::process::exit(n8n_export::run(n8n_export::Cli::parse()));
}
