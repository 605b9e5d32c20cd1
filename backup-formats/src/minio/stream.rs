//! The manifest without holding it: its three lists (keys, deleted keys,
//! objects) live in [`Spool`]s, written while a backup runs and read one
//! item at a time, so a bucket of a million objects costs disk, not memory.
//! The JSON is the same document as [`Manifest`]'s, read and written as a
//! stream: archives of either era read alike.

use super::spool::Spool;
use super::{archive_path, Head, KeyState, ObjectEntry};
use anyhow::{Context, Result};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::io::Read;
use std::path::Path;

pub struct SpooledManifest {
    pub head: Head,
    /// Every object in the bucket at backup time, in key order.
    pub keys: Spool<KeyState>,
    /// Keys gone since the base (incrementals).
    pub deleted: Spool<String>,
    /// The objects the archive holds, in its order (key order).
    pub objects: Spool<ObjectEntry>,
}

impl SpooledManifest {
    /// An empty manifest to fill, its lists spooled in `dir`.
    pub fn new(head: Head, dir: &Path) -> Result<SpooledManifest> {
        Ok(SpooledManifest {
            head,
            keys: Spool::new(dir)?,
            deleted: Spool::new(dir)?,
            objects: Spool::new(dir)?,
        })
    }

    /// Reads a manifest's JSON as it streams by, checking what each list
    /// must be as it goes: keys and objects strictly in key order (so no key
    /// twice, and an incremental's comparison with its base is a merge), each
    /// object where its key puts it. The head is checked by the caller, who
    /// knows the archive's name.
    pub fn parse(json: impl Read, dir: &Path) -> Result<SpooledManifest> {
        let mut parsed = Parsing {
            head: Partial::default(),
            keys: Spool::new(dir)?,
            deleted: Spool::new(dir)?,
            objects: Spool::new(dir)?,
            failure: None,
        };
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(json));
        let outcome = (&mut parsed).deserialize(&mut de).and_then(|()| de.end());
        // A failure of the spool's own (disk full) is told as itself, not as
        // a malformed manifest.
        if let Some(e) = parsed.failure {
            return Err(e);
        }
        outcome.context("manifest.json is malformed")?;
        Ok(SpooledManifest {
            head: parsed.head.finish()?,
            keys: parsed.keys,
            deleted: parsed.deleted,
            objects: parsed.objects,
        })
    }

    /// The manifest's JSON, and its length (a tar header needs it first).
    pub fn json(&mut self) -> Result<(impl Read + '_, u64)> {
        let head = serde_json::to_string(&self.head)?;
        let open = format!("{},\"keys\":[", head.strip_suffix('}').unwrap_or(&head));
        let (mid1, mid2, close) = ("],\"deleted\":[", "],\"objects\":[", "]}");
        let len = (open.len() + mid1.len() + mid2.len() + close.len()) as u64
            + self.keys.raw_len()
            + self.deleted.raw_len()
            + self.objects.raw_len();
        let reader = std::io::Cursor::new(open)
            .chain(self.keys.raw()?)
            .chain(mid1.as_bytes())
            .chain(self.deleted.raw()?)
            .chain(mid2.as_bytes())
            .chain(self.objects.raw()?)
            .chain(close.as_bytes());
        Ok((reader, len))
    }

    /// The whole manifest in memory: for tests only, since nothing the tools
    /// do holds a manifest whole (memory would grow with the objects).
    #[cfg(test)]
    pub fn load(mut self) -> Result<super::Manifest> {
        let keys = self.keys.iter()?.collect::<Result<_>>()?;
        let deleted = self.deleted.iter()?.collect::<Result<_>>()?;
        let objects = self.objects.iter()?.collect::<Result<_>>()?;
        Ok(super::Manifest {
            head: self.head,
            keys,
            deleted,
            objects,
        })
    }
}

/// The head's fields as they arrive (any order).
#[derive(Default)]
struct Partial {
    format: Option<String>,
    bucket: Option<String>,
    kind: Option<super::Kind>,
    created: Option<String>,
    base: Option<String>,
}

impl Partial {
    fn finish(self) -> Result<Head> {
        let missing = |field: &str| anyhow::anyhow!("manifest.json is malformed: no {field}");
        Ok(Head {
            format: self.format.ok_or_else(|| missing("format"))?,
            bucket: self.bucket.ok_or_else(|| missing("bucket"))?,
            kind: self.kind.ok_or_else(|| missing("kind"))?,
            created: self.created.ok_or_else(|| missing("created"))?,
            base: self.base,
        })
    }
}

struct Parsing {
    head: Partial,
    keys: Spool<KeyState>,
    deleted: Spool<String>,
    objects: Spool<ObjectEntry>,
    /// An error that is not the JSON's (the spool's), kept whole.
    failure: Option<anyhow::Error>,
}

impl<'de> DeserializeSeed<'de> for &mut Parsing {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut Parsing {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a minio-snap manifest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "format" => self.head.format = Some(map.next_value()?),
                "bucket" => self.head.bucket = Some(map.next_value()?),
                "kind" => self.head.kind = Some(map.next_value()?),
                "created" => self.head.created = Some(map.next_value()?),
                "base" => self.head.base = map.next_value()?,
                "keys" => {
                    let (spool, failure) = (&mut self.keys, &mut self.failure);
                    let mut last: Option<String> = None;
                    map.next_value_seed(each(|k: KeyState| {
                        if last.as_ref().is_some_and(|l| *l >= k.key) {
                            return Err(format!("key {:?} is listed twice or out of order", k.key));
                        }
                        keep(spool.push(&k), failure)?;
                        last = Some(k.key);
                        Ok(())
                    }))?
                }
                "deleted" => {
                    let (spool, failure) = (&mut self.deleted, &mut self.failure);
                    map.next_value_seed(each(|k: String| keep(spool.push(&k), failure)))?
                }
                "objects" => {
                    // Written after the head: where an object belongs depends
                    // on the bucket.
                    let Some(bucket) = self.head.bucket.clone() else {
                        return Err(de::Error::custom("objects come before the bucket"));
                    };
                    let (spool, failure) = (&mut self.objects, &mut self.failure);
                    let mut last: Option<String> = None;
                    map.next_value_seed(each(|o: ObjectEntry| {
                        if o.path != archive_path(&bucket, &o.key) {
                            return Err(format!(
                                "object {:?} is at {:?}, not where its key puts it",
                                o.key, o.path
                            ));
                        }
                        if last.as_ref().is_some_and(|l| *l >= o.key) {
                            return Err(format!(
                                "object {:?} is listed twice or out of order",
                                o.key
                            ));
                        }
                        keep(spool.push(&o), failure)?;
                        last = Some(o.key);
                        Ok(())
                    }))?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Keeps a spool's failure aside (see `Parsing::failure`) and stops the parse.
fn keep(result: Result<()>, failure: &mut Option<anyhow::Error>) -> Result<(), String> {
    result.map_err(|e| {
        let shown = format!("{e:#}");
        *failure = Some(e);
        shown
    })
}

/// A JSON array, each element handed to the closure as it is read.
struct Each<T, F>(F, std::marker::PhantomData<fn(T)>);

fn each<T, F: FnMut(T) -> Result<(), String>>(f: F) -> Each<T, F> {
    Each(f, std::marker::PhantomData)
}

impl<'de, T, F> DeserializeSeed<'de> for Each<T, F>
where
    T: serde::Deserialize<'de>,
    F: FnMut(T) -> Result<(), String>,
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T, F> Visitor<'de> for Each<T, F>
where
    T: serde::Deserialize<'de>,
    F: FnMut(T) -> Result<(), String>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            (self.0)(item).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minio::{Kind, Manifest, FORMAT};

    fn key(k: &str) -> KeyState {
        KeyState {
            key: k.into(),
            etag: Some("e".into()),
            last_modified: None,
            size: 1,
        }
    }

    fn object(k: &str) -> ObjectEntry {
        ObjectEntry {
            key: k.into(),
            path: archive_path("docs", k),
            size: 1,
            etag: None,
            sha256: "00".into(),
            last_modified: None,
            content_type: None,
            metadata: Default::default(),
        }
    }

    fn manifest(keys: &[&str], objects: &[&str]) -> Manifest {
        Manifest {
            head: Head {
                format: FORMAT.into(),
                bucket: "docs".into(),
                kind: Kind::Incremental,
                created: "2024-01-01T00:00:00+00:00".into(),
                base: Some("docs_20231231_000000.tar.gz".into()),
            },
            keys: keys.iter().map(|k| key(k)).collect(),
            deleted: vec!["gone".into()],
            objects: objects.iter().map(|k| object(k)).collect(),
        }
    }

    fn parse(json: &[u8]) -> Result<Manifest> {
        let dir = tempfile::tempdir().unwrap();
        SpooledManifest::parse(json, dir.path())?.load()
    }

    #[test]
    fn what_is_written_in_pieces_reads_back_as_the_same_document() {
        let dir = tempfile::tempdir().unwrap();
        let whole = manifest(&["a", "b/c", "ü"], &["a", "ü"]);
        let mut spooled = SpooledManifest::new(whole.head.clone(), dir.path()).unwrap();
        whole
            .keys
            .iter()
            .for_each(|k| spooled.keys.push(k).unwrap());
        whole
            .deleted
            .iter()
            .for_each(|k| spooled.deleted.push(k).unwrap());
        whole
            .objects
            .iter()
            .for_each(|o| spooled.objects.push(o).unwrap());
        let (mut reader, len) = spooled.json().unwrap();
        let mut json = Vec::new();
        reader.read_to_end(&mut json).unwrap();
        assert_eq!(json.len() as u64, len);
        // Today's tools (serde, in memory) read it as the same document …
        assert_eq!(serde_json::from_slice::<Manifest>(&json).unwrap(), whole);
        // … and the stream reads what the tools of before wrote (pretty).
        let before = serde_json::to_vec_pretty(&whole).unwrap();
        assert_eq!(parse(&before).unwrap(), whole);
    }

    #[test]
    fn lists_out_of_order_or_twice_and_misplaced_objects_are_refused() {
        let refused = |m: Manifest| parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        let e = refused(manifest(&["b", "a"], &[]));
        assert!(format!("{e:#}").contains("key \"a\" is listed twice or out of order"));
        let e = refused(manifest(&["a", "a"], &[]));
        assert!(format!("{e:#}").contains("key \"a\" is listed twice or out of order"));
        let e = refused(manifest(&[], &["b", "a"]));
        assert!(format!("{e:#}").contains("object \"a\" is listed twice or out of order"));
        let mut moved = manifest(&[], &["a"]);
        moved.objects[0].path = "docs_backup/elsewhere".into();
        let e = refused(moved);
        assert!(
            format!("{e:#}").contains("not where its key puts it"),
            "{e:#}"
        );
        let e = parse(br#"{"format":"minio-snap/1","keys":[]"#).unwrap_err();
        assert!(
            format!("{e:#}").contains("manifest.json is malformed"),
            "{e:#}"
        );
    }
}
