//! Workflows as data: validation, the backup's canonical form, and the body the
//! public API accepts on restore. No I/O here.

use serde_json::{Map, Value};

/// The one answer to "is this a valid workflow backup" (`backup_formats::n8n`).
pub use backup_formats::n8n::validate_workflows as validate;

fn id_of(w: &Value) -> String {
    match &w["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sorted by id, so two backups of an unchanged instance are byte-identical.
pub fn canonical(mut list: Vec<Value>) -> Vec<Value> {
    list.sort_by_key(id_of);
    list
}

/// The fields the public API takes on create and update (it refuses others).
pub const API_FIELDS: [&str; 5] = ["name", "nodes", "connections", "settings", "staticData"];

pub fn api_body(w: &Value) -> Value {
    let mut body = Map::new();
    for field in API_FIELDS {
        match (field, &w[field]) {
            ("settings", Value::Null) => {
                body.insert(field.into(), Value::Object(Map::new()));
            }
            (_, Value::Null) => {}
            (_, v) => {
                body.insert(field.into(), v.clone());
            }
        }
    }
    Value::Object(body)
}

/// A copy for the CLI's import with every workflow inactive (unless activating).
pub fn with_active(list: &[Value], active: bool) -> Vec<Value> {
    list.iter()
        .map(|w| {
            let mut w = w.clone();
            if let Some(o) = w.as_object_mut() {
                o.insert(
                    "active".into(),
                    Value::Bool(active && o.get("active") == Some(&Value::Bool(true))),
                );
            }
            w
        })
        .collect()
}

pub fn id(w: &Value) -> String {
    id_of(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_order_is_by_id() {
        let list = vec![json!({"id": "b"}), json!({"id": "a"}), json!({"id": "c"})];
        let ids: Vec<String> = canonical(list).iter().map(id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn api_body_keeps_only_what_the_api_accepts() {
        let w = json!({"id": "a", "name": "x", "nodes": [1], "connections": {}, "settings": null,
                       "pinData": {"n": []}, "active": true, "tags": [], "staticData": null});
        assert_eq!(
            api_body(&w),
            json!({"name": "x", "nodes": [1], "connections": {}, "settings": {}})
        );
    }

    #[test]
    fn import_copies_are_inactive_unless_activating() {
        let list = vec![
            json!({"id": "a", "active": true}),
            json!({"id": "b", "active": false}),
        ];
        assert_eq!(with_active(&list, false)[0]["active"], false);
        assert_eq!(with_active(&list, true)[0]["active"], true);
        assert_eq!(with_active(&list, true)[1]["active"], false);
    }
}
