//! n8n's exports, as `n8n export:workflow --all` and `export:credentials --all`
//! write them: what counts as a valid workflow or credential backup, for
//! backup, restore and verify alike.

use anyhow::{bail, Result};
use serde_json::Value;

/// An array of workflows, each with a non-empty id (string or number), a name,
/// nodes and connections.
pub fn validate_workflows(value: &Value) -> Result<&Vec<Value>> {
    let Some(list) = value.as_array() else {
        bail!("not a JSON array of workflows");
    };
    for (i, w) in list.iter().enumerate() {
        let id_ok = w["id"].as_str().is_some_and(|s| !s.is_empty()) || w["id"].is_number();
        if !id_ok
            || !w["name"].is_string()
            || !w["nodes"].is_array()
            || !w["connections"].is_object()
        {
            let name = w["name"].as_str().unwrap_or("?");
            bail!("workflow #{i} ({name}) lacks id, name, nodes or connections");
        }
    }
    Ok(list)
}

/// An array of credentials as n8n stores them: each with a non-empty id, a
/// name, a type and its data still encrypted (a string; decrypted data is an
/// object and never belongs in a backup).
pub fn validate_credentials(value: &Value) -> Result<&Vec<Value>> {
    let Some(list) = value.as_array() else {
        bail!("not a JSON array of credentials");
    };
    for (i, c) in list.iter().enumerate() {
        let ok = c["id"].as_str().is_some_and(|s| !s.is_empty())
            && c["name"].is_string()
            && c["type"].is_string()
            && c["data"].is_string();
        if !ok {
            bail!("credential #{i} lacks id, name, type or encrypted data");
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_the_workflow_export_shape() {
        assert!(validate_workflows(&json!([])).is_ok());
        assert!(validate_workflows(
            &json!([{"id": "a", "name": "x", "nodes": [], "connections": {}}])
        )
        .is_ok());
        let err = validate_workflows(&json!([{"id": "a", "name": "x", "nodes": []}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "workflow #0 (x) lacks id, name, nodes or connections"
        );
        // An empty id is no id: restore could not put it back.
        assert!(validate_workflows(
            &json!([{"id": "", "name": "x", "nodes": [], "connections": {}}])
        )
        .is_err());
        assert!(validate_workflows(&json!({"data": []})).is_err());
    }

    #[test]
    fn credentials_must_stay_encrypted() {
        let good = json!([{"id": "c1", "name": "pg", "type": "postgres", "data": "U2FsdGVk"}]);
        assert!(validate_credentials(&good).is_ok());
        let decrypted =
            json!([{"id": "c1", "name": "pg", "type": "postgres", "data": {"password": "x"}}]);
        assert!(validate_credentials(&decrypted).is_err());
        let no_id = json!([{"id": "", "name": "pg", "type": "postgres", "data": "x"}]);
        assert!(validate_credentials(&no_id).is_err());
    }
}
