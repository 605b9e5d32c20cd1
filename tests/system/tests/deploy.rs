//! deploy/: the compose file and the Kubernetes manifests parse, the manifests
//! validate against the Kubernetes API schemas (kubernetes-validate, offline),
//! and every variable they set is one the tools read — a name in the README's
//! configuration table.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use test_harness::script::repo_root;

/// The venv scripts/test.sh installs kubernetes-validate (and PyYAML) into.
fn venv() -> PathBuf {
    std::env::var_os("KUBERNETES_VALIDATE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/backup-kit/kubernetes-validate"))
}

fn manifests() -> Vec<PathBuf> {
    let dir = repo_root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    files
}

fn facts() -> Value {
    let out = Command::new(venv().join("bin/python"))
        .arg(repo_root().join("tests/system/deploy_facts.py"))
        .arg(repo_root().join("deploy/docker-compose.yml"))
        .args(manifests())
        .output()
        .expect("the kubernetes-validate venv's python (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every variable name in the README's configuration table.
fn documented() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let table = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    let mut names = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cell = row.split(" | ").next().unwrap();
        for part in cell.split('`').skip(1).step_by(2) {
            if part
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                names.insert(part.to_owned());
            }
        }
    }
    names
}

/// `NAME_FILE` is read wherever `NAME` is: every secret has the file form.
fn assert_documented(what: &str, name: &str, documented: &BTreeSet<String>) {
    let base = name.strip_suffix("_FILE").unwrap_or(name);
    assert!(
        documented.contains(name) || documented.contains(base),
        "{what} sets {name}, which is not in the README's configuration table"
    );
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let files = manifests();
    let out = Command::new(venv().join("bin/kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .args(&files)
        .output()
        .expect("kubernetes-validate (scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches(" passed for resource ").count(),
        files.len(),
        "{text}"
    );
    // kustomization.yaml names every manifest, and nothing else.
    let kustomization =
        std::fs::read_to_string(repo_root().join("deploy/kubernetes/kustomization.yaml")).unwrap();
    let listed: BTreeSet<&str> = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    let present: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed,
        present.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
}

#[test]
fn a_cronjob_per_component_and_one_for_maintenance_with_only_variables_the_tools_read() {
    let facts = facts();
    let documented = documented();
    let manifests = facts["manifests"].as_object().unwrap();
    let config = manifests["configmap.yaml"]["data"].as_object().unwrap();
    for name in config.keys() {
        assert_documented("configmap.yaml", name, &documented);
    }
    assert_eq!(
        config["BACKUP_KEEP_RECORDS"], "true",
        "one report of the whole stack"
    );
    let secret_keys: BTreeSet<&str> = manifests["secret.example.yaml"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let mut components = BTreeSet::new();
    for (file, m) in manifests.iter().filter(|(_, m)| m["kind"] == "CronJob") {
        assert_eq!(m["concurrency"], "Forbid", "{file}");
        let args: Vec<&str> = m["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[0], "run", "{file}: the image's run-once mode");
        match args.as_slice() {
            ["run", "backup.sh", "--component", c] => {
                components.insert(c.to_string());
            }
            ["run", "sh", "-c", script] => {
                for tool in ["backup-prune", "backup-verify --all", "backup-report"] {
                    assert!(script.contains(tool), "{file}: {script}");
                }
                components.insert("maintenance".to_owned());
            }
            other => panic!("{file}: unexpected command {other:?}"),
        }
        let requests = &m["resources"]["requests"];
        assert!(
            requests["memory"].is_string() && requests["cpu"].is_string(),
            "{file}"
        );
        assert!(m["resources"]["limits"]["memory"].is_string(), "{file}");
        assert_eq!(m["config_maps"][0], "backup-kit-config", "{file}");
        assert_eq!(m["mounts"]["backups"], "/data/backups", "{file}");
        for (name, value) in m["env"].as_object().unwrap() {
            assert_documented(file, name, &documented);
            // A secret's file is a key of the mounted Secret.
            let path = value.as_str().unwrap();
            let key = path
                .strip_prefix("/run/secrets/backup-kit/")
                .unwrap_or_else(|| panic!("{file}: {name}={path} is not in the secret mount"));
            assert!(
                secret_keys.contains(key),
                "{file}: no key {key} in the Secret"
            );
        }
    }
    assert_eq!(
        components,
        ["maintenance", "minio", "n8n", "postgres", "qdrant"]
            .map(String::from)
            .into()
    );
}

#[test]
fn the_compose_file_runs_the_backup_service_beside_the_stack() {
    let facts = facts();
    let compose = &facts["compose"];
    assert_eq!(
        compose["services"],
        serde_json::json!(["backup-service", "minio", "n8n", "postgres-db", "qdrant"])
    );
    let documented = documented();
    let secrets: BTreeSet<&str> = compose["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for (name, value) in compose["environment"].as_object().unwrap() {
        assert_documented("docker-compose.yml", name, &documented);
        // A secret's file is a Docker secret given to the service.
        if let Some(secret) = value.as_str().and_then(|p| p.strip_prefix("/run/secrets/")) {
            assert!(
                secrets.contains(secret),
                "{name}: {secret} is not given to the service"
            );
            assert!(compose["secret_files"][secret].is_string());
        }
    }
    for secret in [
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "MINIO_ROOT_USER",
        "N8N_API_KEY",
    ] {
        assert!(
            compose["environment"].get(secret).is_none(),
            "{secret} in plain text"
        );
        assert!(compose["environment"]
            .get(format!("{secret}_FILE"))
            .is_some());
    }
    assert!(compose["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v.as_str().unwrap().ends_with(":/data/backups")));
    assert_eq!(
        compose["healthcheck"],
        serde_json::json!([
            "CMD",
            "backup-report",
            "--health",
            "--started-file",
            "/run/backup-kit.started"
        ])
    );
}
