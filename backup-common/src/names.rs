//! Names that come from configuration and end up in file names or archive
//! paths (a bucket, a database, a collection) are checked before anything is
//! done with them: `MINIO_BUCKET=../../x` must not reach the filesystem, and an
//! empty one must not publish `_20240101_000000.tar.gz`.

/// S3's bucket naming rules (which MinIO enforces too).
pub fn check_bucket(name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "bucket name {name:?} {why} (S3 bucket naming rules)"
        ))
    };
    if !(3..=63).contains(&name.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("may hold only lowercase letters, digits, dots and hyphens");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge(name.as_bytes()[0]) || !edge(name.as_bytes()[name.len() - 1]) {
        return bad("must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("must not hold two dots in a row");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not look like an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        return bad("uses a reserved prefix or suffix");
    }
    Ok(())
}

/// A PostgreSQL database name that is also safe as a file name prefix: 1 to 63
/// bytes (PostgreSQL's identifier limit), no `/`, no control characters, not
/// hidden (a leading dot).
pub fn check_database(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("database name {name:?} {why}"));
    if name.is_empty() || name.len() > 63 {
        return bad("must be 1 to 63 bytes long (PostgreSQL's identifier limit)");
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return bad("must not hold '/' or control characters (it names the backup file)");
    }
    if name.starts_with('.') {
        return bad("must not begin with a dot (it names the backup file)");
    }
    // POSTGRES_DB lists are comma-separated and trimmed, and `all` is a
    // word of its own: a name that cannot come back through them would be
    // restored into another database, or not at all.
    if name.trim() != name || name.contains(',') || name == "all" {
        return bad(
            "must not begin or end with white space, hold a comma or be `all` (POSTGRES_DB \
             could not name it again for the restore)",
        );
    }
    Ok(())
}

/// Which series of a component a backup takes: the names given (a
/// comma-separated list, e.g. `POSTGRES_DB=shop,crm`) or `all` of them, found
/// on the server at run time (so one created tomorrow is backed up tomorrow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Named(Vec<String>),
    All,
}

impl Selection {
    /// Parses `value` (`variable` names it in errors); each name is checked
    /// with `check`, repeats are dropped, order is kept.
    pub fn parse(
        value: &str,
        variable: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> Result<Selection, String> {
        if value.trim() == "all" {
            return Ok(Selection::All);
        }
        let mut names: Vec<String> = Vec::new();
        for name in value.split(',').map(str::trim) {
            if name.is_empty() && value.contains(',') {
                return Err(format!(
                    "{variable} {value:?} holds an empty name (names are separated by single commas)"
                ));
            }
            check(name).map_err(|e| format!("{variable}: {e}"))?;
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        Ok(Selection::Named(names))
    }

    /// The one name of a selection that must hold exactly one (a restore's
    /// target).
    pub fn single(&self, variable: &str, flag: &str) -> Result<&str, String> {
        match self {
            Selection::Named(names) if names.len() == 1 => Ok(&names[0]),
            Selection::Named(names) => Err(format!(
                "{variable} names {} ({}); this takes one: give {flag} NAME",
                names.len(),
                names.join(",")
            )),
            Selection::All => Err(format!(
                "{variable} is \"all\"; this takes one: give {flag} NAME"
            )),
        }
    }
}

/// Qdrant's rules for collection names: 1 to 255 bytes, none of `<>:"/\|?*`
/// and no NUL; control characters are refused too (they become archive paths).
pub fn check_collection(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("collection name {name:?} {why}"));
    if name.is_empty() || name.len() > 255 {
        return bad("must be 1 to 255 bytes long");
    }
    if name
        .chars()
        .any(|c| "<>:\"/\\|?*".contains(c) || c.is_control())
    {
        return bad("must not hold any of <>:\"/\\|?* or control characters");
    }
    if name == "." || name == ".." {
        return bad("is not a name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_selection_is_a_list_of_checked_names_or_all() {
        let parse = |v: &str| Selection::parse(v, "POSTGRES_DB", check_database);
        assert_eq!(parse("all"), Ok(Selection::All));
        assert_eq!(
            parse("shop, crm,shop"),
            Ok(Selection::Named(vec!["shop".into(), "crm".into()]))
        );
        assert!(parse("shop,,crm").unwrap_err().contains("empty name"));
        assert!(parse("shop,../x").unwrap_err().starts_with("POSTGRES_DB: "));
        let one = parse("shop").unwrap();
        assert_eq!(one.single("POSTGRES_DB", "--db"), Ok("shop"));
        assert!(parse("a,b")
            .unwrap()
            .single("POSTGRES_DB", "--db")
            .unwrap_err()
            .contains("names 2 (a,b)"));
        assert!(Selection::All.single("MINIO_BUCKET", "--bucket").is_err());
    }

    use super::*;

    #[test]
    fn buckets_follow_s3_rules() {
        for good in ["documents", "my-bucket.v2", "abc", "a1b"] {
            assert_eq!(check_bucket(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "..",
            "ab",
            "../../x",
            "Docs",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "x-s3alias",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(check_bucket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn databases_are_identifiers_and_safe_file_prefixes() {
        for good in ["arasul_db", "Shop", "ü-db", "a b"] {
            assert_eq!(check_database(good), Ok(()), "{good}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "tab\there", &"d".repeat(64)] {
            assert!(check_database(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn collections_follow_qdrant_rules() {
        for good in ["documents", "my docs", "ü", "a.b"] {
            assert_eq!(check_collection(good), Ok(()), "{good}");
        }
        for bad in ["", "..", "a/b", "a:b", "a*b", "nul\0", &"c".repeat(256)] {
            assert!(check_collection(bad).is_err(), "{bad:?}");
        }
    }
}
