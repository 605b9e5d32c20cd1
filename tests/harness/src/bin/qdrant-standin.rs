//! The Qdrant stand-in as a program, for benchmarks and manual runs:
//! `qdrant-standin PORT [COLLECTION=SNAPSHOT_FILE]...` serves each file as the
//! snapshot of a collection of that name until killed.

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: qdrant-standin PORT [COLLECTION=SNAPSHOT_FILE]...");
    let server = test_harness::qdrant::QdrantStandin::start_on(None, port);
    for spec in args {
        let (name, file) = spec.split_once('=').expect("COLLECTION=SNAPSHOT_FILE");
        server.serve_file_as_snapshot(name, std::path::Path::new(file));
    }
    println!("{}", server.url);
    loop {
        std::thread::park();
    }
}
