//! pg_dump's "dump complete" trailer: the proof that a plain-format dump was
//! written to the end. pg_dump can exit 0 and still have been cut short by
//! whatever sat between it and us; the trailer cannot lie that way.

/// Which program wrote the SQL, and so which trailer ends it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Trailer {
    /// pg_dump: one database.
    #[default]
    Database,
    /// pg_dumpall (`--globals-only`): roles and tablespaces.
    Cluster,
}

impl Trailer {
    fn marker(self) -> &'static str {
        match self {
            Trailer::Database => "\n-- PostgreSQL database dump complete\n",
            Trailer::Cluster => "\n-- PostgreSQL database cluster dump complete\n",
        }
    }

    /// What the trailer says, for messages.
    pub fn words(self) -> &'static str {
        match self {
            Trailer::Database => "dump complete",
            Trailer::Cluster => "cluster dump complete",
        }
    }
}

/// Keeps the last few KiB of a stream, enough to hold the trailer.
#[derive(Default)]
pub struct DumpTail {
    buf: Vec<u8>,
    trailer: Trailer,
}

const KEEP: usize = 4096;

impl DumpTail {
    /// For the output of pg_dumpall rather than pg_dump.
    pub fn of(trailer: Trailer) -> DumpTail {
        DumpTail {
            buf: Vec::new(),
            trailer,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= KEEP {
            self.buf.clear();
            self.buf.extend_from_slice(&chunk[chunk.len() - KEEP..]);
        } else {
            self.buf.extend_from_slice(chunk);
            if self.buf.len() > 2 * KEEP {
                self.buf.drain(..self.buf.len() - KEEP);
            }
        }
    }

    /// True if the stream ended with the trailer, followed only by what pg_dump
    /// writes after it: comment and blank lines and `\unrestrict <key>` (15.14+).
    pub fn is_complete(&self) -> bool {
        let text = String::from_utf8_lossy(&self.buf);
        let marker = self.trailer.marker();
        let Some(at) = text.rfind(marker) else {
            return false;
        };
        text[at + marker.len()..].lines().all(|line| {
            let line = line.trim_end_matches('\r');
            line.is_empty() || line.starts_with("--") || line.starts_with("\\unrestrict ")
        }) && text.ends_with('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_END: &str = "SET row_security = off;\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict idYuxojBlDl6joLss38qSlbKxnBDxqIHRPfgkB8tcbGXmMgZnjGrKr4MJv4g7gL\n\n";
    const OLD_END: &str =
        "SET row_security = off;\n\n--\n-- PostgreSQL database dump complete\n--\n\n";

    fn tail_of(chunks: &[&[u8]]) -> DumpTail {
        let mut t = DumpTail::default();
        for c in chunks {
            t.push(c);
        }
        t
    }

    #[test]
    fn pg_dumpall_globals_end_with_the_cluster_trailer_after_unrestrict() {
        // As pg_dumpall 15.18 --globals-only writes it.
        let end = "GRANT grp TO app GRANTED BY postgres;\n\n\n\\unrestrict Meu9jjgX\n\n--\n-- PostgreSQL database cluster dump complete\n--\n\n";
        let mut t = DumpTail::of(Trailer::Cluster);
        t.push(end.as_bytes());
        assert!(t.is_complete());
        assert!(
            !tail_of(&[end.as_bytes()]).is_complete(),
            "not a database dump"
        );
        let mut cut = DumpTail::of(Trailer::Cluster);
        cut.push(&end.as_bytes()[..40]);
        assert!(!cut.is_complete());
    }

    #[test]
    fn accepts_the_trailer_of_pg_dump_15_with_and_without_unrestrict() {
        assert!(tail_of(&[REAL_END.as_bytes()]).is_complete());
        assert!(tail_of(&[OLD_END.as_bytes()]).is_complete());
    }

    #[test]
    fn finds_the_trailer_across_chunk_boundaries_after_a_long_dump() {
        let body = vec![b'x'; 100_000];
        let end = REAL_END.as_bytes();
        assert!(tail_of(&[&body, &end[..20], &end[20..25], &end[25..]]).is_complete());
        let mut all = body.clone();
        all.extend_from_slice(end);
        assert!(tail_of(&[&all]).is_complete());
    }

    #[test]
    fn rejects_a_dump_cut_anywhere_before_its_end() {
        let text = format!(
            "{}{}",
            "COPY t FROM stdin;\n1\tx\n\\.\n".repeat(50),
            OLD_END
        );
        let marker = Trailer::Database.marker();
        let marker_end = text.rfind(marker).unwrap() + marker.len();
        for cut in 0..marker_end {
            assert!(
                !tail_of(&[&text.as_bytes()[..cut]]).is_complete(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn rejects_sql_after_the_trailer() {
        let text = format!("{OLD_END}DROP TABLE important;\n");
        assert!(!tail_of(&[text.as_bytes()]).is_complete());
    }

    #[test]
    fn rejects_an_empty_stream() {
        assert!(!DumpTail::default().is_complete());
    }
}
