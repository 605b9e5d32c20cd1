//! The whole stack as throwaway services with sample data, for scripts/demo.sh:
//! `demo-stack DIR` starts PostgreSQL, the S3 server, the Qdrant stand-in and
//! n8n, writes their settings to DIR/stack.env (secrets as *_FILE files in
//! DIR/secrets), copies the objects it put into the bucket to DIR/seed/minio,
//! and keeps everything running until its stdin closes; then it stops them all.
//! `DEMO_S3=garage` makes the S3 server Garage instead of s3s-fs.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use test_harness::n8n::{sample_workflows, N8n};
use test_harness::qdrant::QdrantStandin;
use test_harness::s3::{Flavor, S3Server};
use test_harness::PgCluster;

fn secret(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join("secrets").join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value.as_bytes()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path.display().to_string()
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: demo-stack DIR"));
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::create_dir_all(dir.join("seed/minio")).unwrap();

    eprintln!("demo-stack: PostgreSQL with arasul_db (50,000 rows)");
    let pg = PgCluster::start();
    pg.create_db("arasul_db");
    pg.sql(
        "arasul_db",
        "CREATE SCHEMA app;
         CREATE TABLE app.documents (id serial PRIMARY KEY, title text, meta jsonb, body bytea);
         INSERT INTO app.documents (title, meta, body)
           SELECT 'Dokument Nr. ' || g || ' – grüße', jsonb_build_object('n', g, 'tags', jsonb_build_array('a', 'ü')),
                  decode(md5(g::text), 'hex')
           FROM generate_series(1, 50000) g;
         CREATE VIEW app.recent AS SELECT * FROM app.documents WHERE id > 49000;",
    );

    let flavor = match std::env::var("DEMO_S3").as_deref() {
        Ok("garage") => Flavor::Garage,
        _ => Flavor::S3sFs,
    };
    eprintln!(
        "demo-stack: S3 server ({}) with bucket documents (200 objects)",
        flavor.name()
    );
    let s3 = S3Server::start_as(flavor);
    s3.create_bucket("documents");
    for i in 0..200 {
        let key = format!("reports/{:02}/report-{i:04}.txt", i % 12);
        let body = format!("report {i}: {}\n", "lorem ipsum ".repeat(i % 50)).into_bytes();
        s3.put(
            "documents",
            &key,
            &body,
            "text/plain",
            &[("source", "demo")],
        );
        let seed = dir.join("seed/minio").join(&key);
        std::fs::create_dir_all(seed.parent().unwrap()).unwrap();
        std::fs::write(seed, body).unwrap();
    }

    eprintln!("demo-stack: Qdrant stand-in with collections documents (50 points) and memory (30)");
    let qdrant_key = format!("qdrant-demo-{}", std::process::id());
    let qdrant = QdrantStandin::start(Some(&qdrant_key));
    qdrant.add_collection("documents", 4, 50);
    qdrant.add_collection("memory", 3, 30);

    eprintln!("demo-stack: n8n 2.8.4 with 25 workflows (about a minute)");
    let n8n = N8n::start();
    n8n.import(&sample_workflows(20));

    let env = format!(
        "export PATH=\"{pg_bin}:$PATH\"
export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT={pg_port} POSTGRES_USER={pg_user} POSTGRES_DB=arasul_db
export POSTGRES_PASSWORD_FILE={pg_pw}
export MINIO_ENDPOINT={s3_url} MINIO_REGION={s3_region} MINIO_BUCKET=documents MINIO_ROOT_USER={s3_user}
export MINIO_ROOT_PASSWORD_FILE={s3_pw}
export QDRANT_URL={qdrant_url} QDRANT_API_KEY_FILE={qdrant_pw}
export N8N_URL={n8n_url} N8N_API_KEY_FILE={n8n_pw}
",
        pg_bin = pg.bin("pg_dump").parent().unwrap().display(),
        pg_port = pg.port,
        pg_user = test_harness::pg::SUPERUSER,
        pg_pw = secret(&dir, "postgres", &pg.password),
        s3_url = s3.endpoint,
        s3_user = s3.access_key,
        s3_region = s3.region,
        s3_pw = secret(&dir, "minio", &s3.secret_key),
        qdrant_url = qdrant.url,
        qdrant_pw = secret(&dir, "qdrant", &qdrant_key),
        n8n_url = n8n.url,
        n8n_pw = secret(&dir, "n8n", &n8n.api_key),
    );
    // Renamed into place, so the demo never reads half a file.
    std::fs::write(dir.join(".stack.env.tmp"), env).unwrap();
    std::fs::rename(dir.join(".stack.env.tmp"), dir.join("stack.env")).unwrap();
    eprintln!("demo-stack: ready ({})", dir.join("stack.env").display());

    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    eprintln!("demo-stack: stopping the services");
    drop((n8n, qdrant, s3, pg));
}
