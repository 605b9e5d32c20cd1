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

/// OpenSSL's salted format, as n8n's `Cipher` writes each credential's data:
/// base64 of `Salted__`, 8 bytes of salt, then AES-256-CBC (PKCS#7 padding)
/// under a key and IV from EVP_BytesToKey (MD5, one round) over the
/// instance's encryption key and the salt (n8n-core's
/// `dist/encryption/cipher.js`, read in n8n 2.8.4).
const SALTED: &[u8] = b"Salted__";

/// The credential data `data` decrypted with n8n's encryption key `key`:
/// the JSON text n8n encrypted. A wrong key fails here (the padding does not
/// check out, or what comes out is not JSON).
pub fn decrypt_credential_data(data: &str, key: &str) -> Result<String> {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| anyhow::anyhow!("the data is not base64"))?;
    if raw.len() < 32 || !raw.starts_with(SALTED) || (raw.len() - 16) % 16 != 0 {
        bail!("the data is not in n8n's encrypted form (\"Salted__\", salt, AES blocks)");
    }
    let (salt, body) = (&raw[8..16], &raw[16..]);
    // n8n reads the key as Buffer.from(key, 'binary'): the low byte of each
    // UTF-16 unit.
    let password: Vec<u8> = key.encode_utf16().map(|u| u as u8).collect();
    let mut key_iv = [0u8; 48];
    evpkdf::evpkdf::<md5::Md5>(&password, salt, 1, &mut key_iv);
    let (key, iv) = key_iv.split_at(32);
    let plain = cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(body)
        .map_err(|_| anyhow::anyhow!("the key does not decrypt it"))?;
    let text =
        String::from_utf8(plain).map_err(|_| anyhow::anyhow!("the key does not decrypt it"))?;
    if serde_json::from_str::<Value>(&text).is_err() {
        bail!("the key does not decrypt it");
    }
    Ok(text)
}

/// Checks that `key` decrypts every credential of a credentials backup;
/// returns how many there are. The error names the first that it does not.
pub fn check_credentials_key(value: &Value, key: &str) -> Result<usize> {
    let list = validate_credentials(value)?;
    for (i, c) in list.iter().enumerate() {
        let data = c["data"].as_str().expect("validated");
        if let Err(e) = decrypt_credential_data(data, key) {
            bail!(
                "the credentials cannot be decrypted with N8N_ENCRYPTION_KEY (credential #{i} \
                 {:?}, id {}: {e}) — give the key of the n8n that made the backup",
                c["name"].as_str().unwrap_or("?"),
                c["id"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(list.len())
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

    /// Made by n8n's algorithm (node's crypto, n8n-core's Cipher.encrypt) with
    /// the key "vector-key-ü" and salt 0102030405060708.
    const VECTOR: &str =
        "U2FsdGVkX18BAgMEBQYHCPs86f0X4FVrv/58begeRxJqnGt/nxms1fsxwpD/sx290TnwUbXt4u6uNZKaV3JNZw==";

    #[test]
    fn decrypts_what_n8n_encrypts_and_only_with_its_key() {
        assert_eq!(
            decrypt_credential_data(VECTOR, "vector-key-ü").unwrap(),
            r#"{"user":"admin","password":"s3cret"}"#
        );
        let wrong = decrypt_credential_data(VECTOR, "vector-key-u").unwrap_err();
        assert_eq!(wrong.to_string(), "the key does not decrypt it");
        assert!(decrypt_credential_data("bm90IHNhbHRlZA==", "k").is_err());
        assert!(decrypt_credential_data("%%%", "k").is_err());

        let list = json!([{"id": "c1", "name": "pg", "type": "postgres", "data": VECTOR}]);
        assert_eq!(check_credentials_key(&list, "vector-key-ü").unwrap(), 1);
        let err = check_credentials_key(&list, "other")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "the credentials cannot be decrypted with N8N_ENCRYPTION_KEY (credential #0 \"pg\", id c1: "
            ),
            "{err}"
        );
    }
}
