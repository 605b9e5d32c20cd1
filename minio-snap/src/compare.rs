//! What an incremental holds: the bucket's listing against its base's key
//! list. Both are in key order, so this is a merge of two streams — memory
//! stays the same for ten objects or ten million. Pure: no server, no file.

use crate::manifest::KeyState;
use anyhow::Result;

/// One key's fate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Listed now, and so in the base: nothing to fetch.
    Unchanged(KeyState),
    /// Listed now, not in the base.
    New(KeyState),
    /// Listed now and in the base, with another ETag, size or time.
    Changed(KeyState),
    /// In the base, not listed now: deleted since.
    Gone(String),
}

impl Change {
    /// Whether the archive must hold the object.
    pub fn fetch(&self) -> Option<&KeyState> {
        match self {
            Change::New(k) | Change::Changed(k) => Some(k),
            Change::Unchanged(_) | Change::Gone(_) => None,
        }
    }
}

/// Walks `now` (the listing) and `before` (the base's keys; empty for a full
/// backup, where every key is new) side by side, both strictly in key order,
/// handing `each` every key's [`Change`] in key order.
pub fn compare(
    now: impl Iterator<Item = Result<KeyState>>,
    before: impl Iterator<Item = Result<KeyState>>,
    mut each: impl FnMut(Change) -> Result<()>,
) -> Result<()> {
    let mut before = before.peekable();
    for key in now {
        let key = key?;
        // Whatever the base has before this key is gone.
        while let Some(earlier) = before.next_if(|b| b.as_ref().map_or(true, |b| b.key < key.key)) {
            each(Change::Gone(earlier?.key))?;
        }
        match before
            .next_if(|b| b.as_ref().is_ok_and(|b| b.key == key.key))
            .transpose()?
        {
            Some(same) if same == key => each(Change::Unchanged(key))?,
            Some(_) => each(Change::Changed(key))?,
            None => each(Change::New(key))?,
        }
    }
    for rest in before {
        each(Change::Gone(rest?.key))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(key: &str, etag: &str) -> KeyState {
        KeyState {
            key: key.into(),
            etag: Some(etag.into()),
            last_modified: None,
            size: 1,
        }
    }

    fn run(now: &[KeyState], before: &[KeyState]) -> Vec<Change> {
        let mut out = Vec::new();
        compare(
            now.iter().cloned().map(Ok),
            before.iter().cloned().map(Ok),
            |c| {
                out.push(c);
                Ok(())
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn a_full_backup_takes_every_key() {
        let now = [k("a", "1"), k("b", "1")];
        assert_eq!(
            run(&now, &[]),
            [Change::New(k("a", "1")), Change::New(k("b", "1"))]
        );
    }

    #[test]
    fn new_changed_unchanged_and_gone_in_key_order() {
        let before = [
            k("a", "1"),
            k("c", "1"),
            k("d", "1"),
            k("f", "1"),
            k("g", "1"),
        ];
        let now = [k("b", "1"), k("c", "1"), k("d", "2"), k("e", "1")];
        assert_eq!(
            run(&now, &before),
            [
                Change::Gone("a".into()),
                Change::New(k("b", "1")),
                Change::Unchanged(k("c", "1")),
                Change::Changed(k("d", "2")),
                Change::New(k("e", "1")),
                Change::Gone("f".into()),
                Change::Gone("g".into()),
            ]
        );
    }

    #[test]
    fn a_size_or_time_alone_is_a_change() {
        let mut bigger = k("a", "1");
        bigger.size = 2;
        let mut later = k("b", "1");
        later.last_modified = Some("2024-01-02T00:00:00Z".into());
        let before = [k("a", "1"), k("b", "1")];
        let fetched: Vec<String> = run(&[bigger, later], &before)
            .iter()
            .filter_map(|c| c.fetch().map(|k| k.key.clone()))
            .collect();
        assert_eq!(fetched, ["a", "b"]);
    }

    #[test]
    fn an_error_on_either_side_stops_the_walk() {
        let failing = || vec![Ok(k("a", "1")), Err(anyhow::anyhow!("page 2 failed"))].into_iter();
        let e = compare(failing(), std::iter::empty(), |_| Ok(())).unwrap_err();
        assert_eq!(e.to_string(), "page 2 failed");
        let e = compare(vec![Ok(k("b", "1"))].into_iter(), failing(), |_| Ok(())).unwrap_err();
        assert_eq!(e.to_string(), "page 2 failed");
    }
}
