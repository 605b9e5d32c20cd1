//! Artifact names: `<prefix>_<YYYYMMDD_HHMMSS>.<ext>` and their `<prefix>_latest.<ext>` links.
//!
//! The timestamp in the name is the backup's identity: retention, reports and
//! restore all read it from here, never from mtime (copies and restores change
//! mtime, they do not change names).

use chrono::{DateTime, Local, NaiveDateTime, TimeZone};
use std::fmt;

/// `YYYYMMDD_HHMMSS`, as `date +%Y%m%d_%H%M%S` prints it.
pub const TIMESTAMP_FORMAT: &str = "%Y%m%d_%H%M%S";
const TIMESTAMP_LEN: usize = 15;

/// The four services we back up; each owns one folder of the backup tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Postgres,
    Minio,
    Qdrant,
    N8n,
}

impl Component {
    pub const ALL: [Component; 4] = [
        Component::Postgres,
        Component::Minio,
        Component::Qdrant,
        Component::N8n,
    ];

    /// The extensions of this component's artifacts; files with others are not ours.
    pub fn artifact_exts(self) -> &'static [&'static str] {
        match self {
            Component::Postgres => &["sql.gz"],
            Component::Minio => &["tar.gz", "incr.tar.gz"],
            Component::Qdrant => &["tar.gz"],
            Component::N8n => &["json"],
        }
    }

    pub fn from_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The name used in result records, log lines and as the folder name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Postgres => "postgres",
            Component::Minio => "minio",
            Component::Qdrant => "qdrant",
            Component::N8n => "n8n",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed artifact file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArtifactName {
    pub prefix: String,
    pub timestamp: NaiveDateTime,
    /// Everything after the dot that follows the timestamp, without the
    /// encrypted suffix: `sql.gz`, `tar.gz`, `incr.tar.gz`, `json`.
    pub ext: String,
    /// `<name>.age`: the artifact encrypted with age. Same series, retention
    /// and chains as the plain artifact of that name.
    pub encrypted: bool,
}

/// The suffix of an encrypted artifact (`backup_common::crypt`).
pub const ENCRYPTED_SUFFIX: &str = ".age";

impl ArtifactName {
    /// `ext` may end in `.age` (an encrypted artifact).
    pub fn new(prefix: &str, timestamp: NaiveDateTime, ext: &str) -> Self {
        let (ext, encrypted) = match ext.strip_suffix(ENCRYPTED_SUFFIX) {
            Some(plain) => (plain, true),
            None => (ext, false),
        };
        ArtifactName {
            prefix: prefix.to_owned(),
            timestamp,
            ext: ext.to_owned(),
            encrypted,
        }
    }

    fn suffix(&self) -> &'static str {
        if self.encrypted {
            ENCRYPTED_SUFFIX
        } else {
            ""
        }
    }

    /// A name for a backup starting now, in local time (TZ).
    pub fn now(prefix: &str, ext: &str) -> Self {
        Self::new(prefix, truncate_to_second(Local::now()), ext)
    }

    pub fn file_name(&self) -> String {
        format!(
            "{}_{}.{}{}",
            self.prefix,
            self.timestamp.format(TIMESTAMP_FORMAT),
            self.ext,
            self.suffix()
        )
    }

    /// The `*_latest` link for this artifact, with its encrypted suffix if any.
    /// Incrementals are never "latest": the link must always name something
    /// restorable on its own.
    pub fn latest_link_name(&self) -> Option<String> {
        if self.ext.starts_with("incr.") {
            None
        } else {
            Some(format!(
                "{}_latest.{}{}",
                self.prefix,
                self.ext,
                self.suffix()
            ))
        }
    }

    /// The latest link of the other kind (plain for an encrypted artifact and
    /// the reverse): publishing this artifact retires it, so that no link is
    /// left on an older backup once encryption is switched on or off.
    pub fn other_latest_link_name(&self) -> Option<String> {
        let other = ArtifactName {
            encrypted: !self.encrypted,
            ..self.clone()
        };
        other.latest_link_name()
    }

    /// Parses `<prefix>_<YYYYMMDD>_<HHMMSS>.<ext>`; anything else (links, sidecars,
    /// temp files, an operator's own files) is `None`.
    pub fn parse(file_name: &str) -> Option<Self> {
        if file_name.starts_with('.') || file_name.ends_with(".sha256") {
            return None;
        }
        // The timestamp is the last `_dddddddd_dddddd.` in the name; the prefix may hold
        // underscores itself (arasul_db).
        let bytes = file_name.as_bytes();
        let mut start = bytes.len().checked_sub(TIMESTAMP_LEN + 2)?;
        loop {
            if bytes[start] == b'_' && bytes[start + 1 + TIMESTAMP_LEN] == b'.' {
                let ts = &file_name[start + 1..start + 1 + TIMESTAMP_LEN];
                if let Some(timestamp) = parse_timestamp(ts) {
                    let prefix = &file_name[..start];
                    let ext = &file_name[start + 2 + TIMESTAMP_LEN..];
                    if !prefix.is_empty() && !ext.is_empty() {
                        return Some(Self::new(prefix, timestamp, ext));
                    }
                }
            }
            start = start.checked_sub(1)?;
        }
    }

    /// The moment this backup was taken, in the zone of `tz` (normally `Local`).
    /// A wall-clock time skipped by a DST change does not exist; it maps to the
    /// instant just after the gap so ordering is kept.
    pub fn instant_in<Tz: TimeZone>(&self, tz: &Tz) -> DateTime<Tz> {
        match tz.from_local_datetime(&self.timestamp) {
            chrono::LocalResult::Single(t) => t,
            chrono::LocalResult::Ambiguous(earliest, _) => earliest,
            chrono::LocalResult::None => {
                let later = self.timestamp + chrono::Duration::hours(1);
                tz.from_local_datetime(&later)
                    .earliest()
                    .unwrap_or_else(|| tz.from_utc_datetime(&self.timestamp))
            }
        }
    }
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

/// How far in the future (by its name) an artifact may be dated and still
/// count as made by this tree: a DST change shifts names by an hour, a host's
/// clock may be a little off. A dump dated 2099 was not made by this tree's
/// cron: one planted with the host's upload rights would otherwise be "the
/// latest" to a restore plan or to `*_latest`.
pub const CLOCK_SKEW_HOURS: i64 = 2;

/// The newest artifact timestamp that counts as made by now (local time).
pub fn latest_believable_timestamp() -> NaiveDateTime {
    Local::now().naive_local() + chrono::Duration::hours(CLOCK_SKEW_HOURS)
}

/// Parses `YYYYMMDD_HHMMSS`, strictly (exactly 15 characters, a real date and time).
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let ok_shape = s.len() == TIMESTAMP_LEN
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 8 {
                b == b'_'
            } else {
                b.is_ascii_digit()
            }
        });
    if !ok_shape {
        return None;
    }
    NaiveDateTime::parse_from_str(s, TIMESTAMP_FORMAT).ok()
}

/// A weekly folder, `weekly/YYYY_WNN/` (ISO year and week, `date +%G_W%V`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    pub year: i32,
    pub week: u32,
}

impl IsoWeek {
    /// Parses `YYYY_WNN`; a week that does not exist in that ISO year (W00, W54,
    /// W53 of a 52-week year) is `None`.
    pub fn parse(folder: &str) -> Option<IsoWeek> {
        let (year, week) = folder.split_once("_W")?;
        if year.len() != 4
            || week.len() != 2
            || !(year.bytes().chain(week.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let w = IsoWeek {
            year: year.parse().ok()?,
            week: week.parse().ok()?,
        };
        w.monday().map(|_| w)
    }

    pub fn of(date: chrono::NaiveDate) -> IsoWeek {
        let iso = chrono::Datelike::iso_week(&date);
        IsoWeek {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// The Monday that starts this week.
    pub fn monday(self) -> Option<chrono::NaiveDate> {
        chrono::NaiveDate::from_isoywd_opt(self.year, self.week, chrono::Weekday::Mon)
    }

    pub fn folder_name(self) -> String {
        format!("{:04}_W{:02}", self.year, self.week)
    }
}

fn truncate_to_second<Tz: TimeZone>(t: DateTime<Tz>) -> NaiveDateTime {
    let naive = t.naive_local();
    naive
        .date()
        .and_hms_opt(
            chrono::Timelike::hour(&naive),
            chrono::Timelike::minute(&naive),
            chrono::Timelike::second(&naive),
        )
        .expect("hour, minute and second of a valid time are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn formats_like_the_product_description() {
        let name = ArtifactName::new("arasul_db", ts(2024, 1, 24, 2, 0, 15), "sql.gz");
        assert_eq!(name.file_name(), "arasul_db_20240124_020015.sql.gz");
        assert_eq!(
            name.latest_link_name().as_deref(),
            Some("arasul_db_latest.sql.gz")
        );
    }

    #[test]
    fn an_encrypted_artifact_is_the_same_artifact_with_age_after_it() {
        let name = ArtifactName::parse("arasul_db_20240124_020015.sql.gz.age").unwrap();
        assert_eq!(
            (name.prefix.as_str(), name.ext.as_str()),
            ("arasul_db", "sql.gz")
        );
        assert!(name.encrypted);
        assert_eq!(name.file_name(), "arasul_db_20240124_020015.sql.gz.age");
        assert_eq!(
            name.latest_link_name().as_deref(),
            Some("arasul_db_latest.sql.gz.age")
        );
        assert_eq!(
            name.other_latest_link_name().as_deref(),
            Some("arasul_db_latest.sql.gz")
        );
        let incr = ArtifactName::parse("documents_20240124_020030.incr.tar.gz.age").unwrap();
        assert_eq!(incr.ext, "incr.tar.gz");
        assert_eq!(incr.latest_link_name(), None);
        assert_eq!(incr.other_latest_link_name(), None);
    }

    #[test]
    fn parses_every_artifact_kind_of_the_contract() {
        for (file, prefix, ext) in [
            ("arasul_db_20240124_020015.sql.gz", "arasul_db", "sql.gz"),
            ("documents_20240124_020030.tar.gz", "documents", "tar.gz"),
            (
                "documents_20240124_020030.incr.tar.gz",
                "documents",
                "incr.tar.gz",
            ),
            ("qdrant_20240124_020045.tar.gz", "qdrant", "tar.gz"),
            ("workflows_20240124_020100.json", "workflows", "json"),
            ("credentials_20240124_020100.json", "credentials", "json"),
        ] {
            let parsed = ArtifactName::parse(file).unwrap_or_else(|| panic!("{file}"));
            assert_eq!(parsed.prefix, prefix);
            assert_eq!(parsed.ext, ext);
            assert_eq!(parsed.file_name(), file, "round trip");
        }
    }

    #[test]
    fn a_prefix_that_itself_looks_like_a_timestamp_is_kept() {
        let parsed = ArtifactName::parse("db_20200101_000000_20240124_020015.sql.gz").unwrap();
        assert_eq!(parsed.prefix, "db_20200101_000000");
        assert_eq!(parsed.timestamp, ts(2024, 1, 24, 2, 0, 15));
    }

    #[test]
    fn incrementals_have_no_latest_link() {
        let name = ArtifactName::new("documents", ts(2024, 1, 24, 2, 0, 15), "incr.tar.gz");
        assert_eq!(name.latest_link_name(), None);
    }

    #[test]
    fn rejects_what_is_not_an_artifact() {
        for file in [
            "arasul_db_latest.sql.gz",
            "arasul_db_20240124_020015.sql.gz.sha256",
            ".arasul_db_20240124_020015.sql.gz.tmp-123",
            "_20240124_020015.sql.gz",
            "arasul_db_20240124_020015.",
            "arasul_db_20240124_020015",
            "arasul_db_20241324_020015.sql.gz",
            "arasul_db_20240230_020015.sql.gz",
            "arasul_db_20240124_250015.sql.gz",
            "arasul_db_2024012_0020015.sql.gz",
            "notes.txt",
            "",
        ] {
            assert_eq!(ArtifactName::parse(file), None, "{file:?}");
        }
    }

    #[test]
    fn timestamp_parsing_is_strict() {
        assert_eq!(
            parse_timestamp("20241231_235959"),
            Some(ts(2024, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            parse_timestamp("20240229_000000"),
            Some(ts(2024, 2, 29, 0, 0, 0))
        );
        assert_eq!(parse_timestamp("20230229_000000"), None);
        assert_eq!(parse_timestamp("2024123_2359590"), None);
        assert_eq!(parse_timestamp("+2024123_235959"), None);
        assert_eq!(parse_timestamp("20241231-235959"), None);
    }

    #[test]
    fn names_sort_by_time_within_a_prefix() {
        let a = ArtifactName::parse("db_20240101_000000.sql.gz").unwrap();
        let b = ArtifactName::parse("db_20240101_000001.sql.gz").unwrap();
        assert!(a < b);
    }

    #[test]
    fn iso_weeks_parse_strictly_and_know_53_week_years() {
        assert_eq!(
            IsoWeek::parse("2024_W03"),
            Some(IsoWeek {
                year: 2024,
                week: 3
            })
        );
        assert_eq!(
            IsoWeek::parse("2020_W53")
                .map(|w| w.folder_name())
                .as_deref(),
            Some("2020_W53")
        );
        for bad in [
            "2021_W53", "2024_W00", "2024_W54", "2024_W3", "24_W03", "2024-W03", "2024_w03",
            "latest",
        ] {
            assert_eq!(IsoWeek::parse(bad), None, "{bad}");
        }
        // 2021-01-03 is a Sunday of 2020's week 53, as `date +%G_W%V` says.
        let d = chrono::NaiveDate::from_ymd_opt(2021, 1, 3).unwrap();
        assert_eq!(IsoWeek::of(d).folder_name(), "2020_W53");
        let d = chrono::NaiveDate::from_ymd_opt(2024, 12, 30).unwrap();
        assert_eq!(IsoWeek::of(d).folder_name(), "2025_W01");
    }

    #[test]
    fn skipped_and_repeated_local_times_still_have_an_instant() {
        use chrono_tz::Europe::Berlin;
        // 02:30 did not exist in Berlin on 2024-03-31; it maps past the gap.
        let skipped = ArtifactName::parse("db_20240331_023000.sql.gz").unwrap();
        assert_eq!(
            skipped.instant_in(&Berlin).naive_local(),
            ts(2024, 3, 31, 3, 30, 0)
        );
        // 02:30 happened twice on 2024-10-27; the first one is taken.
        let repeated = ArtifactName::parse("db_20241027_023000.sql.gz").unwrap();
        assert_eq!(
            repeated.instant_in(&Berlin).naive_utc(),
            ts(2024, 10, 27, 0, 30, 0)
        );
    }
}
