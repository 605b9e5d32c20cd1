"""Prints, as JSON, what the deployment files say (tests/deploy.rs checks it):
the compose file's services and the backup service's environment, secrets and
volumes; each Kubernetes manifest's kind, and for the CronJobs their schedule,
policy, arguments, environment and resources.

usage: deploy_facts.py COMPOSE_FILE MANIFEST..."""
import json
import sys

import yaml

compose_file, manifests = sys.argv[1], sys.argv[2:]
with open(compose_file) as f:
    compose = yaml.safe_load(f)
backup = compose["services"]["backup-service"]
facts = {
    "compose": {
        "services": sorted(compose["services"]),
        "environment": backup["environment"],
        "secrets": backup.get("secrets", []),
        "secret_files": {k: v["file"] for k, v in compose.get("secrets", {}).items()},
        "volumes": backup.get("volumes", []),
        "healthcheck": backup.get("healthcheck", {}).get("test", []),
    },
    "manifests": {},
}
for path in manifests:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        entry = {"kind": doc["kind"], "name": doc["metadata"]["name"]}
        if doc["kind"] == "ConfigMap":
            entry["data"] = doc.get("data", {})
        if doc["kind"] == "Secret":
            entry["keys"] = sorted(doc.get("stringData", {}) or doc.get("data", {}))
        if doc["kind"] == "CronJob":
            spec = doc["spec"]
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            entry.update(
                schedule=spec["schedule"],
                concurrency=spec.get("concurrencyPolicy"),
                args=container.get("args", []),
                env={e["name"]: e.get("value") for e in container.get("env", [])},
                config_maps=[e["configMapRef"]["name"] for e in container.get("envFrom", [])],
                resources=container.get("resources", {}),
                mounts={m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])},
                volumes=pod.get("volumes", []),
            )
        facts["manifests"][path.rsplit("/", 1)[-1]] = entry
print(json.dumps(facts))
