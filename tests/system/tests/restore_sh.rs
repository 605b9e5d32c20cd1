//! scripts/restore.sh under busybox sh: the whole stack backed up by
//! backup.sh, every service replaced by a fresh, empty one, and the stack
//! restored from the weekly snapshot in one command.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use test_harness::n8n::N8n;
use test_harness::qdrant::QdrantStandin;
use test_harness::s3::S3Server;
use test_harness::script::script;
use test_harness::{PgCluster, Tool};

/// The services one restore.sh or backup.sh run reaches.
struct Services<'a> {
    pg: &'a PgCluster,
    s3: &'a S3Server,
    qdrant: &'a QdrantStandin,
    n8n: &'a N8n,
}

impl Services<'_> {
    fn env(&self, t: Tool, dir: &std::path::Path) -> Tool {
        self.pg
            .connect(t)
            .env("BACKUP_DIR", dir)
            .env("TZ", "Europe/Berlin")
            .env("MINIO_ENDPOINT", &self.s3.endpoint)
            .env("MINIO_ROOT_USER", &self.s3.access_key)
            .env("MINIO_ROOT_PASSWORD", &self.s3.secret_key)
            .env("QDRANT_URL", &self.qdrant.url)
            .env("N8N_CLI", self.n8n.cli_prefix())
    }
}

const DATABASES: [&str; 2] = ["crm", "shop"];
const BUCKETS: [&str; 2] = ["documents", "photos"];

fn roles(pg: &PgCluster) -> String {
    let roles = "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin \
                 FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1";
    let members = "SELECT r.rolname, m.rolname FROM pg_auth_members a \
                   JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
                   WHERE r.rolname !~ '^pg_' ORDER BY 1, 2";
    format!(
        "{}\n{}",
        pg.sql("postgres", roles),
        pg.sql("postgres", members)
    )
}

/// Every object of every bucket: bytes, content type and metadata.
type Objects = BTreeMap<(String, String), (Vec<u8>, String, BTreeMap<String, String>)>;

fn objects(s3: &S3Server) -> Objects {
    let mut all = BTreeMap::new();
    for b in BUCKETS {
        for k in s3.keys(b) {
            let got = s3.get(b, &k).unwrap();
            all.insert((b.to_owned(), k), got);
        }
    }
    all
}

/// What of a workflow survives a round trip (n8n rewrites the rest).
fn workflow_essence(list: &[Value]) -> Vec<Value> {
    list.iter()
        .map(|w| {
            let nodes: Vec<Value> = w["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| json!({"name": n["name"], "type": n["type"], "parameters": n["parameters"],
                                "credentials": n["credentials"]}))
                .collect();
            json!({"id": w["id"], "name": w["name"], "nodes": nodes, "connections": w["connections"]})
        })
        .collect()
}

#[test]
fn the_whole_stack_comes_back_from_a_weekly_snapshot_into_fresh_services() {
    let dir = tempfile::tempdir().unwrap();

    // The stack: two databases with rows owned by extra roles, two buckets,
    // two collections and an alias, n8n credentials and a workflow using one.
    let pg = PgCluster::start();
    pg.sql(
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'app-pw-77'; CREATE ROLE readers; GRANT readers TO app;",
    );
    for db in DATABASES {
        pg.create_db(db);
        pg.sql(
            db,
            "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 700) g; \
             ALTER TABLE t OWNER TO app;",
        );
    }
    let s3 = S3Server::start();
    for (b, n) in BUCKETS.iter().zip([12, 5]) {
        s3.create_bucket(b);
        for i in 0..n {
            s3.put(
                b,
                &format!("dir/ü {i}.txt"),
                format!("{b} object {i}").as_bytes(),
                "text/plain; charset=utf-8",
                &[("origin", "scanner")],
            );
        }
    }
    let qdrant = QdrantStandin::start(None);
    qdrant.add_collection("documents", 4, 60);
    qdrant.add_collection("memory", 3, 25);
    qdrant.point_alias("docs", "documents");
    let credentials = json!([test_harness::n8n::postgres_credential()]);
    let workflow = test_harness::n8n::workflow_using_postgres_credential();

    // Backed up by backup.sh, promoted to this week's snapshot. One n8n at a
    // time (the harness's rule): the first goes before the fresh one starts.
    let (key, workflows, decrypted, week) = {
        let n8n = N8n::start();
        n8n.import_credentials(&credentials);
        n8n.import(&workflow);
        let source = Services {
            pg: &pg,
            s3: &s3,
            qdrant: &qdrant,
            n8n: &n8n,
        };
        let out = source
            .env(script("backup.sh"), dir.path())
            .env("POSTGRES_DB", DATABASES.join(","))
            .env("MINIO_BUCKET", "all")
            .env("N8N_BACKUP_CREDENTIALS", "true")
            .run(&["--weekly"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let weeks: Vec<String> = fs::read_dir(dir.path().join("weekly"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        (
            n8n.encryption_key().to_owned(),
            workflow_essence(&n8n.workflows()),
            n8n.credentials_decrypted(),
            weeks[0].clone(),
        )
    };
    let original_objects = objects(&s3);
    let original_roles = roles(&pg);

    // Every service replaced by a fresh, empty one (n8n keeps its key, as an
    // operator's new host is given it).
    let pg2 = PgCluster::start();
    let s3b = S3Server::start();
    let qdrant2 = QdrantStandin::start(None);
    let n8n2 = N8n::start_with_key(&key);
    let fresh = Services {
        pg: &pg2,
        s3: &s3b,
        qdrant: &qdrant2,
        n8n: &n8n2,
    };
    let restore = fresh
        .env(script("restore.sh"), dir.path())
        .env("N8N_ENCRYPTION_KEY", &key);
    // Not on a terminal and no --yes: nobody confirmed, nothing touched.
    let out = restore.run(&["--from", &format!("weekly/{week}")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert!(objects(&s3b).is_empty());

    let out = restore.run(&["--from", &format!("weekly/{week}"), "--yes"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    for line in [
        "postgres ok (3 step(s))",
        "minio    ok (2 step(s))",
        "qdrant   ok (1 step(s))",
        "n8n      ok (2 step(s))",
    ] {
        assert!(out.stdout.contains(line), "{line:?} not in {}", out.stdout);
    }
    let plan_at = out.stderr.find("Restore plan").unwrap();
    let plan = &out.stderr[plan_at..];
    let order: Vec<&str> = [
        "globals_",
        "crm_",
        "shop_",
        "documents_",
        "photos_",
        "qdrant_",
        "credentials_",
        "workflows_",
    ]
    .iter()
    .map(|p| {
        let at = plan
            .find(p)
            .unwrap_or_else(|| panic!("{p} not in the plan: {plan}"));
        (at, *p)
    })
    .collect::<std::collections::BTreeMap<_, _>>()
    .into_values()
    .collect();
    assert_eq!(
        order,
        [
            "globals_",
            "crm_",
            "shop_",
            "documents_",
            "photos_",
            "qdrant_",
            "credentials_",
            "workflows_"
        ],
        "restore order"
    );

    // Each service as the original was.
    assert_eq!(roles(&pg2), original_roles);
    for db in DATABASES {
        assert!(
            pg.comparable_dump(db) == pg2.comparable_dump(db),
            "{db} differs"
        );
    }
    assert_eq!(
        objects(&s3b),
        original_objects,
        "objects byte for byte, with types and metadata"
    );
    assert_eq!(qdrant2.points_count("documents"), Some(60));
    assert_eq!(qdrant2.points_count("memory"), Some(25));
    assert_eq!(
        qdrant2.aliases(),
        [("docs".to_owned(), "documents".to_owned())]
    );
    assert_eq!(workflow_essence(&n8n2.workflows()), workflows);
    assert_eq!(
        n8n2.credentials_decrypted(),
        decrypted,
        "the fresh n8n decrypts them"
    );

    // The audit log: one line per tool restore, one for the run.
    let audit = fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each restore says it started before it touches anything, then how it ended.
    let (started, lines): (Vec<Value>, Vec<Value>) =
        lines.into_iter().partition(|l| l["outcome"] == "started");
    let tools: Vec<&str> = lines.iter().map(|l| l["tool"].as_str().unwrap()).collect();
    assert_eq!(
        tools,
        [
            "pg-dumpwrap",
            "pg-dumpwrap",
            "pg-dumpwrap",
            "minio-snap",
            "minio-snap",
            "qdrant-snap",
            "n8n-export",
            "n8n-export",
            "restore.sh"
        ],
        "{audit}"
    );
    let started_tools: Vec<&str> = started
        .iter()
        .map(|l| l["tool"].as_str().unwrap())
        .collect();
    assert_eq!(started_tools[0], "restore.sh", "{audit}");
    assert_eq!(started_tools[1..], tools[..tools.len() - 1], "{audit}");
    assert!(lines.iter().all(|l| l["outcome"] == "success"), "{audit}");
    assert_eq!(
        lines[1]["target"].as_str().unwrap().split(' ').nth(1),
        Some("crm")
    );
    assert!(lines[1]["artifacts"][0]["sha256"].as_str().unwrap().len() == 64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(dir.path().join("audit.log"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    for secret in [&pg2.password, &s3b.secret_key, &key] {
        assert!(
            !audit.contains(secret.as_str()),
            "a secret in the audit log"
        );
        assert!(
            !out.all().contains(secret.as_str()),
            "a secret in the output"
        );
    }
}

/// A plan whose file fails its check stops before any service is touched.
#[test]
fn a_damaged_file_stops_the_restore_before_any_service_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgCluster::start();
    pg.create_db("shop");
    pg.sql("shop", "CREATE TABLE t AS SELECT 1 AS one;");
    let t = pg
        .connect(script("backup.sh"))
        .env("BACKUP_DIR", dir.path())
        .env("TZ", "Europe/Berlin")
        .env("BACKUP_COMPONENTS", "postgres")
        .env("POSTGRES_DB", "shop");
    let out = t.run(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let latest = fs::canonicalize(dir.path().join("postgres/shop_latest.sql.gz")).unwrap();
    let mut bytes = fs::read(&latest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&latest, bytes).unwrap();

    let fresh = PgCluster::start();
    let out = fresh
        .connect(script("restore.sh"))
        .env("BACKUP_DIR", dir.path())
        .env("TZ", "Europe/Berlin")
        .run(&["--component", "postgres", "--yes"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("FAIL "), "{}", out.stderr);
    assert!(
        out.stderr.contains("no service was touched"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fresh.sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'"
        ),
        "0"
    );
    let audit = fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"tool\":\"restore.sh\"") && audit.contains("\"outcome\":\"failed\""),
        "{audit}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let t = script("restore.sh").env("BACKUP_DIR", dir.path());
    let out = t.run(&["--help"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("Usage: restore.sh"), "{}", out.stdout);
    for args in [&["--bogus"][..], &["--component", "mysql"], &["--from"]] {
        let out = t.run(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("restore.sh: "), "{}", out.stderr);
    }
    let out = t.run(&["--at", "yesterday", "--yes"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is none of latest, weekly/YYYY_WNN or YYYYMMDD_HHMMSS"),
        "{}",
        out.stderr
    );
}

/// What a planted or damaged tree can no longer make restore.sh do: restore
/// a file this tree's runs never made, leave a series out without a word,
/// forge a step with a file name, or take a database name for an option.
#[test]
fn a_crafted_tree_is_named_and_refused_and_odd_names_restore_as_names() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgCluster::start();
    for db in ["shop", "-rf"] {
        pg.create_db(db);
        pg.sql(db, "CREATE TABLE t AS SELECT 1 AS one;");
    }
    let out = pg
        .connect(script("backup.sh"))
        .env("BACKUP_DIR", dir.path())
        .env("TZ", "Europe/Berlin")
        .env("BACKUP_COMPONENTS", "postgres")
        .env("POSTGRES_DB", "shop,-rf")
        .run(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let postgres = dir.path().join("postgres");
    let shop = fs::canonicalize(postgres.join("shop_latest.sql.gz")).unwrap();
    let shop_name = shop.file_name().unwrap().to_str().unwrap().to_owned();

    let fresh = PgCluster::start();
    let restore = |args: &[&str]| {
        fresh
            .connect(script("restore.sh"))
            .env("BACKUP_DIR", dir.path())
            .env("TZ", "Europe/Berlin")
            .run(args)
    };
    let databases = || {
        fresh.sql(
            "postgres",
            "SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database \
             WHERE datname IN ('shop', '-rf')",
        )
    };
    let refused = |args: &[&str], needle: &str| {
        let out = restore(args);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("no service was touched"),
            "{}",
            out.stderr
        );
        assert_eq!(databases(), "", "{args:?}: a database was touched");
    };
    let pg_only = ["--component", "postgres", "--yes"];

    // A dump planted with a matching sidecar, dated in the future: "the latest".
    let planted = "shop_20991231_235959.sql.gz";
    fs::copy(&shop, postgres.join(planted)).unwrap();
    fs::write(
        postgres.join(format!("{planted}.sha256")),
        fs::read_to_string(format!("{}.sha256", shop.display()))
            .unwrap()
            .replace(&shop_name, planted),
    )
    .unwrap();
    refused(&pg_only, &format!("{planted:?} is dated in the future"));
    fs::remove_file(postgres.join(planted)).unwrap();
    fs::remove_file(postgres.join(format!("{planted}.sha256"))).unwrap();

    // The newest dump's sidecar gone: never quietly the older one instead.
    let sidecar = format!("{}.sha256", shop.display());
    let kept = fs::read(&sidecar).unwrap();
    fs::remove_file(&sidecar).unwrap();
    refused(&pg_only, &format!("{shop_name:?} has no .sha256 sidecar"));
    fs::write(&sidecar, &kept).unwrap();

    // The dump replaced by a link to it.
    let aside = dir.path().join("aside.sql.gz");
    fs::rename(&shop, &aside).unwrap();
    std::os::unix::fs::symlink(&aside, &shop).unwrap();
    refused(&pg_only, &format!("{shop_name:?} is a link"));
    fs::remove_file(&shop).unwrap();
    fs::rename(&aside, &shop).unwrap();

    // A name with a newline and tabs, which once forged a plan line.
    let forged = "x\tn8n\tworkflows\tevil.json\nshop_20240101_000000.sql.gz";
    fs::write(postgres.join(forged), b"x").unwrap();
    fs::write(postgres.join(format!("{forged}.sha256")), b"x").unwrap();
    refused(&pg_only, "has control characters in its name");
    fs::remove_file(postgres.join(forged)).unwrap();
    fs::remove_file(postgres.join(format!("{forged}.sha256"))).unwrap();

    // A weekly snapshot that lacks a database the tree has, and a component
    // asked for that the point does not hold.
    let week = dir.path().join("weekly/2024_W01/postgres");
    fs::create_dir_all(&week).unwrap();
    for entry in fs::read_dir(&postgres).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with("-rf_") && !name.contains("_latest.") && name != ".lock" {
            fs::copy(postgres.join(&name), week.join(&name)).unwrap();
        }
    }
    let from_week = [
        "--from",
        "weekly/2024_W01",
        "--component",
        "postgres",
        "--yes",
    ];
    refused(
        &from_week,
        "postgres: \"-rf\": the tree has backups of it but this point has none",
    );
    refused(
        &[
            "--from",
            "weekly/2024_W01",
            "--component",
            "postgres",
            "--component",
            "n8n",
            "--yes",
        ],
        "n8n: the tree has backups of it but this point has none",
    );
    // Allowed, the gap is still named and the rest restored.
    let out = restore(&[&from_week[..], &["--allow-missing"]].concat());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("\"-rf\": the tree has backups"),
        "{}",
        out.stderr
    );
    assert_eq!(databases(), "shop");

    // The whole tree: a database named like an option is restored as a name.
    let out = restore(&pg_only);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(databases(), "-rf,shop");
    assert_eq!(fresh.sql("-rf", "SELECT one FROM t"), "1");
    assert!(
        out.stderr.contains("(made 20"),
        "the plan shows dates: {}",
        out.stderr
    );
}
