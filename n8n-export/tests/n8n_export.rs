//! n8n-export's real binary against a real n8n (installed from npm by
//! scripts/test.sh), through the API and through the CLI.

use serde_json::Value;
use std::fs;
use std::path::Path;
use test_harness::n8n::{sample_workflows, N8n};
use test_harness::{terminate, tree, wait_for, Output, SmallDisk, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_n8n-export");

fn api_tool(n8n: &N8n, dir: &Path) -> Tool {
    Tool::new(BIN)
        .env("N8N_URL", &n8n.url)
        .env("N8N_API_KEY", &n8n.api_key)
        .env("BACKUP_DIR", dir)
}

fn cli_tool(n8n: &N8n, dir: &Path) -> Tool {
    Tool::new(BIN)
        .env("N8N_CLI", n8n.cli_prefix())
        .env("BACKUP_DIR", dir)
}

fn record(out: &Output) -> Value {
    out.record()
}

fn backup_file(out: &Output, dir: &Path) -> (Value, Vec<u8>) {
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = record(out);
    let bytes = fs::read(dir.join("n8n").join(r["file"].as_str().unwrap())).unwrap();
    (r, bytes)
}

/// What must survive a round trip; n8n rewrites the rest (updatedAt, versionId, …).
fn essence(w: &Value) -> Value {
    let nodes: Vec<Value> = w["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| serde_json::json!({"name": n["name"], "type": n["type"], "typeVersion": n["typeVersion"],
                                    "position": n["position"], "parameters": n["parameters"]}))
        .collect();
    serde_json::json!({"name": w["name"], "nodes": nodes, "connections": w["connections"]})
}

fn essences(list: &[Value]) -> Vec<Value> {
    let mut e: Vec<Value> = list.iter().map(essence).collect();
    e.sort_by_key(|v| v["name"].as_str().unwrap().to_owned());
    e
}

fn assert_failed(out: &Output, needle: &str, secret: &str) {
    out.assert_backup_failed(1, needle, secret);
}

#[test]
fn api_and_cli_backups_agree_and_restores_bring_workflows_back() {
    let n8n = N8n::start();
    n8n.import(&sample_workflows(305));
    let dir = tempfile::tempdir().unwrap();
    let api = api_tool(&n8n, dir.path());

    let (r, first) = backup_file(&api.run(&["backup"]), dir.path());
    assert_eq!(r["workflows"], 310, "every page");
    let listed: Vec<Value> = serde_json::from_slice(&first).unwrap();
    let ids: Vec<&str> = listed.iter().map(|w| w["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "sorted by id");
    let (_, second) = backup_file(&api.run(&["backup"]), dir.path());
    assert!(
        first == second,
        "two backups of an unchanged instance are byte-identical"
    );

    let cli = cli_tool(&n8n, dir.path());
    let (_, via_cli) = backup_file(&cli.run(&["backup"]), dir.path());
    let via_cli: Vec<Value> = serde_json::from_slice(&via_cli).unwrap();
    assert_eq!(
        essences(&via_cli),
        essences(&listed),
        "API and CLI give the same workflows"
    );
    let cli_ids: Vec<&str> = via_cli.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(cli_ids, ids);
    assert!(!api.run(&["backup"]).all().contains(&n8n.api_key));

    // API restore: deleted workflows come back (with new ids, which the API assigns).
    let latest = dir.path().join("n8n/workflows_latest.json");
    for id in ["code000000000004", "unicode000000005", "filler0000000100"] {
        n8n.delete(id);
    }
    let out = api.run(&["restore", latest.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report = &out.json_lines()[0];
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(3), Some(307))
    );
    assert_eq!(essences(&n8n.workflows()), essences(&listed));
    assert!(
        n8n.workflows().iter().all(|w| w["active"] == false),
        "restored inactive"
    );

    // CLI restore keeps ids.
    let now = n8n.workflows();
    let restored_code = now.iter().find(|w| w["name"] == "Code node").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    n8n.delete(&restored_code);
    n8n.delete("manual0000000001");
    let out = cli.run(&["restore", latest.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let after = n8n.workflows();
    assert!(after
        .iter()
        .any(|w| w["id"] == "manual0000000001" && w["name"] == "Manual → Set"));
    assert!(after.iter().any(|w| w["id"] == "code000000000004"));

    // Links planted at the old predictable temp names (…-PID-import.json)
    // change nothing: the CLI's files live in a private folder of their own.
    let tmp = tempfile::tempdir().unwrap();
    let out = test_harness::planted::run_with_links_at_old_names(
        &cli,
        &["restore", latest.to_str().unwrap()],
        tmp.path(),
        |pid| {
            ["import", "workflows"]
                .map(|what| format!(".n8n-export-{pid}-{what}.json"))
                .to_vec()
        },
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(tree(tmp.path()).len(), 2, "only the planted links are left");

    encrypted_exports_round_trip(&n8n);
}

/// Encrypted with recipients and with a passphrase: workflows and credentials
/// as `….json.age` (Debian's `age` decrypts them to today's JSON); restore
/// needs the identity: exit 2 without, 1 with a wrong one, nothing imported.
fn encrypted_exports_round_trip(n8n: &N8n) {
    use test_harness::age::{AgeKeys, Mode};
    let keys = AgeKeys::new();
    let other = AgeKeys::new();
    for mode in Mode::ALL {
        let dir = tempfile::tempdir().unwrap();
        let cli = cli_tool(n8n, dir.path());
        let out = mode
            .apply(&keys, cli.clone(), false)
            .run(&["backup", "--credentials"]);
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        let r = record(&out);
        let file = dir.path().join("n8n").join(r["file"].as_str().unwrap());
        assert!(file.to_string_lossy().ends_with(".json.age"), "{file:?}");
        assert!(r["credentials_file"]
            .as_str()
            .unwrap()
            .ends_with(".json.age"));
        if mode == Mode::Recipients {
            let plain: Vec<Value> = serde_json::from_slice(&keys.decrypt_with_cli(&file)).unwrap();
            assert_eq!(essences(&plain), essences(&n8n.workflows()));
        }
        let latest = dir.path().join("n8n/workflows_latest.json.age");
        n8n.delete("manual0000000001");
        let restore = |t: Tool| t.run(&["restore", latest.to_str().unwrap()]);
        let out = restore(cli.clone());
        assert_eq!(out.code, Some(2), "{mode:?}: {}", out.stderr);
        let out = restore(mode.apply(&other, cli.clone(), true));
        assert_eq!(out.code, Some(1), "{mode:?}: {}", out.stderr);
        assert!(!n8n
            .workflows()
            .iter()
            .any(|w| w["id"] == "manual0000000001"));
        let out = restore(mode.apply(&keys, cli.clone(), true));
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        assert!(n8n
            .workflows()
            .iter()
            .any(|w| w["id"] == "manual0000000001"));
    }
}

#[test]
fn failures_fail_cleanly_and_an_empty_instance_is_a_valid_backup() {
    let n8n = N8n::start();
    let dir = tempfile::tempdir().unwrap();
    let api = api_tool(&n8n, dir.path());

    // Empty instance: a valid, empty backup, said so — through the API and the CLI.
    let out = api.run(&["backup"]);
    let (_, bytes) = backup_file(&out, dir.path());
    assert_eq!(bytes, b"[]\n");
    assert!(
        out.stderr.contains("n8n has no workflows"),
        "{}",
        out.stderr
    );
    let out = cli_tool(&n8n, dir.path()).run(&["backup", "--credentials"]);
    let (r, bytes) = backup_file(&out, dir.path());
    assert_eq!(bytes, b"[]\n");
    assert_eq!(r["credentials"], 0);
    assert!(out.stderr.contains("needs the same N8N_ENCRYPTION_KEY"));
    let before = tree(dir.path());

    let out = api
        .clone()
        .env("N8N_API_KEY", "not-the-key-31337")
        .run(&["backup"]);
    assert_failed(&out, "401 Unauthorized", "not-the-key-31337");
    let out = api
        .clone()
        .env(
            "N8N_URL",
            format!("http://127.0.0.1:{}", test_harness::free_port()),
        )
        .run(&["backup"]);
    assert_failed(&out, "check N8N_URL", &n8n.api_key);
    let out = cli_tool(&n8n, dir.path())
        .env("N8N_CLI", "false")
        .run(&["backup"]);
    assert_failed(&out, "n8n CLI export:workflow failed", &n8n.api_key);
    let out = cli_tool(&n8n, dir.path())
        .env("N8N_CLI", "sh -c 'echo starting n8n…' sh")
        .run(&["backup"]);
    assert_failed(&out, "wrote no file", &n8n.api_key);
    let out = api.run(&["backup", "--credentials"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--credentials needs N8N_CLI"));
    assert_eq!(
        tree(dir.path()),
        before,
        "nothing published, latest unchanged"
    );

    // A malformed or invalid file is refused before anything is imported.
    let bad = dir.path().join("workflows_20240101_000000.json");
    fs::write(&bad, b"[{\"id\": \"x\", \"name\": \"no nodes\"}]").unwrap();
    let out = api.run(&["restore", bad.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("lacks id, name, nodes or connections"),
        "{}",
        out.stderr
    );
    fs::write(&bad, b"[{").unwrap();
    let out = api.run(&["restore", bad.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("is not valid JSON"), "{}", out.stderr);
    assert!(n8n.workflows().is_empty());
}

#[test]
fn a_disabled_api_is_named() {
    let n8n = N8n::start_with(&[("N8N_PUBLIC_API_DISABLED", "true")]);
    let dir = tempfile::tempdir().unwrap();
    let out = api_tool(&n8n, dir.path()).run(&["backup"]);
    assert_failed(&out, "N8N_PUBLIC_API_DISABLED", &n8n.api_key);
    assert!(tree(dir.path()).iter().all(|e| !e.contains(".json")));
}

#[test]
#[ignore = "needs root (it mounts a tmpfs or runs crond); scripts/test.sh runs it as root"]
fn disk_full_publishes_nothing() {
    test_harness::require_root("n8n disk_full_publishes_nothing");
    let n8n = N8n::start();
    n8n.import(&sample_workflows(300));
    let disk = SmallDisk::mount("64k");
    let out = api_tool(&n8n, disk.path()).run(&["backup"]);
    assert_failed(&out, "disk full", &n8n.api_key);
    assert_eq!(tree(disk.path()), vec!["n8n/", "n8n/.lock (0 bytes)"]);
}

#[test]
fn sigterm_stops_the_cli_and_publishes_nothing() {
    // SIGTERM while the CLI runs: the CLI is stopped with us, nothing is published.
    let dir = tempfile::tempdir().unwrap();
    // No n8n needed: the "CLI" is a shell that waits, far longer than the
    // minute `wait_for` allows, so only being stopped with the tool ends it.
    let child = Tool::new(BIN)
        .env("BACKUP_DIR", dir.path())
        .env("N8N_CLI", "sh -c 'sleep 600' sh")
        .spawn(&["backup"]);
    // The CLI (here a shell that waits) must have started: its pid is a child's.
    let tool_pid = child.id();
    let cli = wait_for("the CLI to start", || child_of(tool_pid));
    terminate(child);
    assert_eq!(tree(dir.path()), vec!["n8n/", "n8n/.lock (0 bytes)"]);
    wait_for("the CLI to be stopped with the tool", || {
        let alive = fs::read_to_string(format!("/proc/{cli}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        (!alive).then_some(())
    });
}

#[test]
fn a_stalling_server_ends_the_backup_within_the_stall_timeout() {
    let dir = tempfile::tempdir().unwrap();
    test_harness::stall::assert_backup_survives_stalls(
        |server| {
            Tool::new(BIN)
                .env("N8N_URL", &server.url)
                .env("N8N_API_KEY", "stall-key-7")
                .env("BACKUP_DIR", dir.path())
        },
        &dir.path().join("n8n"),
        &["backup"],
    );
}

/// A process whose parent is `parent`, if one exists.
fn child_of(parent: u32) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(e.path().join("stat")).ok()?;
        // Fields after the parenthesised name: state, then the parent's pid.
        let ppid: u32 = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
}

/// Credentials, and workflows that use them, backed up through the CLI and
/// restored into a **fresh** n8n that has the same N8N_ENCRYPTION_KEY:
/// credentials first (their ids kept), then workflows, which find them again,
/// and the fresh n8n decrypts them. The tool refuses — before importing
/// anything — a key that does not decrypt the backup, a missing key, and the
/// API mode; backup-verify, given the key, checks the same.
#[test]
fn credentials_come_back_into_a_fresh_n8n_with_the_same_key_only() {
    let credentials = serde_json::json!([
        test_harness::n8n::postgres_credential(),
        {"id": "credHttpHeader01", "name": "header auth", "type": "httpHeaderAuth",
         "data": {"name": "X-Token", "value": "tok-ü-42"}}
    ]);
    let workflow = test_harness::n8n::workflow_using_postgres_credential();
    let dir = tempfile::tempdir().unwrap();
    let (key, original) = {
        let source = N8n::start();
        source.import_credentials(&credentials);
        source.import(&workflow);
        let out = cli_tool(&source, dir.path()).run(&["backup", "--credentials"]);
        let r = record(&out);
        assert_eq!(r["credentials"], 2, "{r}");
        (
            source.encryption_key().to_owned(),
            source.credentials_decrypted(),
        )
    };
    let creds_file = dir.path().join("n8n/credentials_latest.json");
    let workflows_file = dir.path().join("n8n/workflows_latest.json");
    let verify = |key: &str| {
        Tool::new(test_harness::script::bin_dir().join("backup-verify"))
            .env("BACKUP_DIR", dir.path())
            .env("N8N_ENCRYPTION_KEY", key)
            .run(&[creds_file.to_str().unwrap()])
    };
    let out = verify(&key);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let out = verify("not-the-key-5150");
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("the credentials cannot be decrypted with N8N_ENCRYPTION_KEY"),
        "{}",
        out.stdout
    );

    let fresh = N8n::start_with_key(&key);
    let restore = |t: Tool, file: &Path, extra: &[&str]| {
        let mut args = vec!["restore"];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        t.run(&args)
    };
    let cli = cli_tool(&fresh, dir.path());
    // A key that is not the backup's: refused, nothing imported.
    let out = restore(
        cli.clone().env("N8N_ENCRYPTION_KEY", "not-the-key-5150"),
        &creds_file,
        &["--credentials"],
    );
    out.assert_failed(
        "restore",
        1,
        "the credentials cannot be decrypted with N8N_ENCRYPTION_KEY",
        "not-the-key-5150",
    );
    let out = restore(cli.clone(), &creds_file, &["--credentials"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("needs N8N_ENCRYPTION_KEY"),
        "{}",
        out.stderr
    );
    let out = restore(
        api_tool(&fresh, dir.path()).env("N8N_ENCRYPTION_KEY", &key),
        &creds_file,
        &["--credentials"],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        fresh.credentials_decrypted().is_empty(),
        "nothing was imported by the refused restores"
    );

    // The key as a file, like every secret.
    let key_file = dir.path().join("n8n.key");
    fs::write(&key_file, format!("{key}\n")).unwrap();
    let out = restore(
        cli.clone().env("N8N_ENCRYPTION_KEY_FILE", &key_file),
        &creds_file,
        &["--credentials"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json_lines()[0]["credentials"], 2);
    assert!(!out.all().contains(&key));
    let out = restore(cli.clone(), &workflows_file, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    assert_eq!(fresh.credentials_decrypted(), original);
    let restored = fresh.workflows();
    let query = restored[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "Query")
        .unwrap();
    assert_eq!(restored[0]["id"], "usesCreds0000001");
    assert_eq!(query["credentials"]["postgres"]["id"], "credPostgres0001");
}

/// SIGKILL at random moments of an API restore over workflows that moved on
/// (some edited, some deleted): n8n takes each workflow in one request, so
/// each is whole — as it was, or as backed up — and running the restore
/// again brings every backed-up workflow back. (Through the API, a workflow
/// deleted since the backup comes back under a new id, so a second run after
/// a killed one may add it twice; the CLI keeps ids and does not.)
#[test]
fn sigkill_mid_restore_leaves_each_workflow_whole_and_a_second_restore_finishes() {
    let n8n = N8n::start();
    n8n.import(&sample_workflows(60));
    let dir = tempfile::tempdir().unwrap();
    let api = api_tool(&n8n, dir.path());
    backup_file(&api.run(&["backup"]), dir.path());
    let backed_up = essences(&n8n.workflows());
    let mut edited = sample_workflows(60);
    for w in edited.as_array_mut().unwrap().iter_mut().skip(5).step_by(3) {
        w["nodes"][0]["position"] = serde_json::json!([999, 999]);
    }
    n8n.import(&edited);
    for i in (0..60).step_by(7) {
        n8n.delete(&format!("filler{i:010}"));
    }
    let before = essences(&n8n.workflows());
    assert_ne!(before, backed_up);
    let latest = dir.path().join("n8n/workflows_latest.json");
    let latest = latest.to_str().unwrap();
    for kill in 0..8 {
        // Spread over the restore's first 2.5 s by the clock's nanoseconds.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let at = std::time::Duration::from_millis(u64::from(nanos % 2500));
        let mut child = api.spawn(&["restore", latest]);
        // Not a wait for an event: the moment of the kill is the experiment.
        std::thread::sleep(at);
        let _ = child.kill();
        let out = test_harness::finish(child);
        for w in essences(&n8n.workflows()) {
            assert!(
                before.contains(&w) || backed_up.contains(&w),
                "kill {kill} at {at:?}: {} is neither as before nor as backed up: {}",
                w["name"],
                out.stderr
            );
        }
    }
    let out = api.run(&["restore", latest]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let now = essences(&n8n.workflows());
    for w in &backed_up {
        assert!(now.contains(w), "{} did not come back", w["name"]);
    }
}
