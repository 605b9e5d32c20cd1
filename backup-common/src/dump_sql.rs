//! What a restore may feed to psql: only what pg_dump writes.
//!
//! psql executes more than SQL: a backslash outside quotes starts a
//! meta-command (`\! id` runs a shell command as the restoring user, `\o` writes
//! files), and `COPY … FROM PROGRAM` makes the server run one. A plain pg_dump
//! file needs none of that: its only meta-commands are `\restrict KEY` and
//! `\unrestrict KEY` on lines of their own (pg_dump 15.14 and later), and `\.`
//! ending a `COPY … FROM stdin` block. `SqlGuard` follows the dump the way
//! psql's lexer does (quotes, identifiers, `E''` escapes, dollar quotes,
//! comments, COPY data) and refuses anything else, naming the line.
//!
//! It is also a filter: the dump's own `\restrict`/`\unrestrict` lines are
//! blanked (line numbers kept), so that a restore can put psql in restricted
//! mode with a key of its own before the first byte of the dump.
//!
//! Transaction control belongs to the restore, never to the dump: the restore
//! sends its own `BEGIN` and, only once every byte passed, its own `COMMIT`.
//! pg_dump writes a bare `BEGIN;` … `COMMIT;` around large objects; inside the
//! restore's transaction the `BEGIN` is a harmless warning and the `COMMIT` is
//! passed on as `SELECT` (it would otherwise commit half a dump). Any other
//! transaction control (`ROLLBACK`, `END`, `SAVEPOINT`, `PREPARE TRANSACTION`,
//! a `COMMIT` hidden behind a comment …) is refused.

/// Where in the dump the lexer is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Normal,
    /// Inside '…'; `escapes` for E'…' strings, where a backslash escapes.
    Single {
        escapes: bool,
        backslash: bool,
    },
    /// Just saw a `'` that may end the string or be the first of `''`.
    SingleEnd {
        escapes: bool,
    },
    Double,
    /// Just saw a `"` that may end the identifier or be the first of `""`.
    DoubleEnd,
    LineComment,
    Block {
        depth: u32,
    },
    /// After `$`: collecting a dollar-quote tag.
    DollarTag {
        tag: Vec<u8>,
    },
    /// Inside `$tag$ … $tag$`; `window` holds the last bytes seen.
    Dollar {
        tag: Vec<u8>,
        window: Vec<u8>,
    },
    /// A meta-command, collected to the end of its line.
    Meta {
        at_line_start: bool,
        text: Vec<u8>,
    },
    /// COPY data lines, up to a line that is exactly `\.`.
    CopyData {
        line_len: usize,
        first: [u8; 2],
    },
}

pub struct SqlGuard {
    state: State,
    line: u64,
    /// Only white space since the last newline (in normal SQL).
    at_line_start: bool,
    /// The current statement's words, quoted parts folded to `"`, for the COPY check.
    statement: Vec<u8>,
    last: u8,
    before_last: u8,
    /// The byte just read completed a two-byte token (`/*`, `*/`): it must not
    /// pair with the next one (`/*/` opens a comment and does not close it).
    paired: bool,
    /// How far the current statement's first word has been read.
    first_word: FirstWord,
    /// The first word's bytes, held back until it is known (a `COMMIT` is
    /// passed on as `SELECT`).
    held: Vec<u8>,
    /// The current statement's `COMMIT` was passed on as `SELECT`.
    neutralized: bool,
    /// Inside the body of `CREATE FUNCTION … BEGIN ATOMIC … END`, as psql
    /// counts it: its `;` do not end psql's statement, which goes to the
    /// server whole.
    routine_depth: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstWord {
    /// Only white space, comments and meta-commands so far.
    Before,
    /// Reading it (its bytes are in `held`).
    Inside,
    /// Read, or the statement began with something else.
    After,
}

/// The longest first word held back; no transaction keyword is longer.
const HELD_LIMIT: usize = 16;

/// Statements that control the transaction: the restore's alone.
const TRANSACTION_CONTROL: [&str; 9] = [
    "BEGIN",
    "COMMIT",
    "END",
    "ABORT",
    "ROLLBACK",
    "START",
    "SAVEPOINT",
    "RELEASE",
    "PREPARE",
];

/// A refusal: the line and what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: u64,
    pub what: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {} — pg_dump never writes that; the file was not made by pg-dumpwrap \
             or has been tampered with, and nothing of it was applied",
            self.line, self.what
        )
    }
}

impl std::error::Error for Refusal {}

const STATEMENT_LIMIT: usize = 64 * 1024;

impl Default for SqlGuard {
    fn default() -> Self {
        SqlGuard {
            state: State::Normal,
            line: 1,
            at_line_start: true,
            statement: Vec::new(),
            last: b'\n',
            before_last: b'\n',
            paired: false,
            first_word: FirstWord::Before,
            held: Vec::new(),
            neutralized: false,
            routine_depth: 0,
        }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// A byte that continues an identifier: `$` does too (`a$$$` is one name to
/// PostgreSQL, not the start of a dollar quote).
fn is_ident_cont(b: u8) -> bool {
    is_ident(b) || b == b'$'
}

impl SqlGuard {
    /// Checks the next piece of the dump; appends what psql may be fed to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Refusal> {
        let mut rest = chunk;
        while let Some((&b, tail)) = rest.split_first() {
            // COPY data is most of a dump: up to its line's end, only the first
            // two bytes matter (`\.` ends the block), so it passes in bulk.
            if let State::CopyData { line_len, first } = &mut self.state {
                let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
                if end > 0 {
                    let line = &rest[..end];
                    for (k, &c) in line
                        .iter()
                        .enumerate()
                        .take(2usize.saturating_sub(*line_len))
                    {
                        first[*line_len + k] = c;
                    }
                    *line_len += end;
                    out.extend_from_slice(line);
                    self.before_last = if end >= 2 { line[end - 2] } else { self.last };
                    self.last = line[end - 1];
                    rest = &rest[end..];
                    continue;
                }
            }
            rest = tail;
            self.step(b, out)?;
            if b == b'\n' {
                self.line += 1;
            }
            self.before_last = self.last;
            self.last = if std::mem::take(&mut self.paired) {
                b' '
            } else {
                b
            };
        }
        Ok(())
    }

    /// The dump has ended: it must not end inside a string, a meta-command or
    /// COPY data.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Refusal> {
        if self.first_word == FirstWord::Inside {
            self.release_first_word(out);
        }
        match &self.state {
            State::Meta { .. } => self.step(b'\n', out),
            State::Normal | State::LineComment
                if self.statement.iter().all(u8::is_ascii_whitespace) =>
            {
                Ok(())
            }
            State::Normal | State::LineComment | State::SingleEnd { .. } | State::DoubleEnd => {
                // pg_dump ends every statement with `;`: one without it would
                // run together with the restore's own COMMIT.
                Err(self.refuse("the dump ends inside a statement (no `;`: cut short?)".into()))
            }
            _ => Err(self.refuse("the dump ends inside a string, comment or COPY data".into())),
        }
    }

    fn refuse(&self, what: String) -> Refusal {
        Refusal {
            line: self.line,
            what,
        }
    }

    fn step(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), Refusal> {
        match std::mem::replace(&mut self.state, State::Normal) {
            State::Normal => self.normal(b, out)?,
            State::Single { escapes, backslash } if !escapes => {
                // A plain string: a backslash is a backslash (standard
                // conforming strings), but a dump that turns them off — even
                // from dynamic SQL — makes `\'` an escaped quote to the
                // server. An odd run of backslashes before a quote is read
                // two ways, so it is refused: pg_dump writes such a string
                // only for data that ends in a backslash before a quote.
                out.push(b);
                if b == b'\'' && backslash {
                    return Err(self.refuse(
                        "a backslash before a quote in a string, which PostgreSQL reads two \
                         ways (standard_conforming_strings)"
                            .into(),
                    ));
                }
                self.state = if b == b'\'' {
                    State::SingleEnd { escapes }
                } else {
                    State::Single {
                        escapes,
                        backslash: b == b'\\' && !backslash,
                    }
                };
            }
            State::Single { escapes, backslash } => {
                out.push(b);
                self.state = if backslash {
                    State::Single {
                        escapes,
                        backslash: false,
                    }
                } else if escapes && b == b'\\' {
                    State::Single {
                        escapes,
                        backslash: true,
                    }
                } else if b == b'\'' {
                    State::SingleEnd { escapes }
                } else {
                    State::Single {
                        escapes,
                        backslash: false,
                    }
                };
            }
            State::SingleEnd { escapes } => {
                if b == b'\'' {
                    out.push(b);
                    self.state = State::Single {
                        escapes,
                        backslash: false,
                    };
                } else {
                    self.normal(b, out)?;
                }
            }
            State::Double => {
                out.push(b);
                self.state = if b == b'"' {
                    State::DoubleEnd
                } else {
                    State::Double
                };
            }
            State::DoubleEnd => {
                if b == b'"' {
                    out.push(b);
                    self.state = State::Double;
                } else {
                    self.normal(b, out)?;
                }
            }
            State::LineComment => {
                out.push(b);
                if b == b'\n' {
                    self.at_line_start = true;
                } else {
                    self.state = State::LineComment;
                }
            }
            State::Block { depth } => {
                out.push(b);
                let depth = if self.last == b'*' && b == b'/' {
                    self.paired = true;
                    depth - 1
                } else if self.last == b'/' && b == b'*' {
                    self.paired = true;
                    depth + 1
                } else {
                    depth
                };
                if depth != 0 {
                    self.state = State::Block { depth };
                }
            }
            State::DollarTag { mut tag } => {
                if b == b'$' {
                    out.push(b);
                    self.fold_quoted();
                    self.state = State::Dollar {
                        tag,
                        window: Vec::new(),
                    };
                } else if is_ident(b) && !(tag.is_empty() && b.is_ascii_digit()) {
                    out.push(b);
                    tag.push(b);
                    self.state = State::DollarTag { tag };
                } else {
                    // `$1` or a lone `$`: not a dollar quote after all.
                    self.statement.extend_from_slice(&tag);
                    self.normal(b, out)?;
                }
            }
            State::Dollar { tag, mut window } => {
                out.push(b);
                window.push(b);
                let closing_len = tag.len() + 2;
                if window.len() > closing_len {
                    window.remove(0);
                }
                let closed = window.len() == closing_len
                    && window[0] == b'$'
                    && window[closing_len - 1] == b'$'
                    && window[1..closing_len - 1] == tag[..];
                if closed {
                    // The closing `$` ends a token: a `$` right after it opens
                    // a new quote, it does not continue a name.
                    self.paired = true;
                } else {
                    self.state = State::Dollar { tag, window };
                }
            }
            State::Meta {
                at_line_start,
                mut text,
            } => {
                if b == b'\n' {
                    self.meta_command(at_line_start, &text)?;
                    // Allowed ones are blanked: the restore runs psql restricted under a key of its own.
                    out.push(b'\n');
                    self.at_line_start = true;
                } else {
                    if text.len() < 200 {
                        text.push(b);
                    }
                    self.state = State::Meta {
                        at_line_start,
                        text,
                    };
                }
            }
            State::CopyData { line_len, first } => {
                out.push(b);
                if b == b'\n' {
                    let end = (line_len == 2 && first == *b"\\.")
                        || (line_len == 3 && first == *b"\\." && self.last == b'\r');
                    self.state = if end {
                        self.at_line_start = true;
                        State::Normal
                    } else {
                        State::CopyData {
                            line_len: 0,
                            first: [0; 2],
                        }
                    };
                } else {
                    let mut first = first;
                    if line_len < 2 {
                        first[line_len] = b;
                    }
                    self.state = State::CopyData {
                        line_len: line_len + 1,
                        first,
                    };
                }
            }
        }
        Ok(())
    }

    /// A byte of plain SQL.
    fn normal(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), Refusal> {
        match self.first_word {
            FirstWord::Before if is_ident(b) => {
                self.first_word = FirstWord::Inside;
                return self.hold(b);
            }
            FirstWord::Inside if is_ident(b) && self.held.len() < HELD_LIMIT => {
                return self.hold(b);
            }
            FirstWord::Inside => self.release_first_word(out),
            // White space, comment openers (`--`, `/*`) and meta-commands
            // come before a word.
            FirstWord::Before
                if !(b.is_ascii_whitespace()
                    || b == b'-'
                    || b == b'/'
                    || b == b'\\'
                    || (b == b'*' && self.last == b'/')) =>
            {
                self.first_word = FirstWord::After;
            }
            _ => {}
        }
        match b {
            b'\\' => {
                self.state = State::Meta {
                    at_line_start: self.at_line_start,
                    text: Vec::new(),
                };
                return Ok(());
            }
            b'\'' => {
                let escapes = matches!(self.last, b'E' | b'e') && !is_ident_cont(self.before_last);
                self.fold_quoted();
                self.state = State::Single {
                    escapes,
                    backslash: false,
                };
            }
            b'"' => {
                self.fold_quoted();
                self.state = State::Double;
            }
            b'-' if self.last == b'-' => {
                // A comment separates words, as white space does (`COPY/**/t`).
                self.statement.pop();
                self.statement.push(b' ');
                self.state = State::LineComment;
            }
            b'*' if self.last == b'/' => {
                self.statement.pop();
                self.statement.push(b' ');
                self.state = State::Block { depth: 1 };
                // The `*` belongs to the opener, never to a closing `*/`.
                self.paired = true;
                out.push(b);
                return Ok(());
            }
            b'$' if !is_ident_cont(self.last) => {
                self.state = State::DollarTag { tag: Vec::new() };
            }
            b';' => {
                self.end_of_statement()?;
                self.at_line_start = false;
                out.push(b);
                return Ok(());
            }
            _ => {
                if self.statement.len() < STATEMENT_LIMIT {
                    self.statement.push(b);
                }
            }
        }
        if b == b'\n' {
            self.at_line_start = true;
        } else if !b.is_ascii_whitespace() {
            self.at_line_start = false;
        }
        out.push(b);
        Ok(())
    }

    fn hold(&mut self, b: u8) -> Result<(), Refusal> {
        self.held.push(b);
        if self.statement.len() < STATEMENT_LIMIT {
            self.statement.push(b);
        }
        self.at_line_start = false;
        Ok(())
    }

    /// The first word is complete: passed on, a `COMMIT` as `SELECT`.
    fn release_first_word(&mut self, out: &mut Vec<u8>) {
        self.first_word = FirstWord::After;
        let word = std::mem::take(&mut self.held);
        if word.eq_ignore_ascii_case(b"COMMIT") {
            self.neutralized = true;
            out.extend_from_slice(b"SELECT");
        } else {
            out.extend_from_slice(&word);
        }
    }

    /// A quoted part of a statement counts as one word for the COPY check.
    fn fold_quoted(&mut self) {
        if self.statement.len() < STATEMENT_LIMIT {
            self.statement.push(b'"');
        }
    }

    fn end_of_statement(&mut self) -> Result<(), Refusal> {
        let statement = std::mem::take(&mut self.statement);
        let neutralized = std::mem::take(&mut self.neutralized);
        self.first_word = FirstWord::Before;
        let text = String::from_utf8_lossy(&statement);
        let words: Vec<String> = text
            .split(|c: char| c.is_whitespace() || "(),".contains(c))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        let first = words.first().map(String::as_str).unwrap_or("");
        // psql's own rule (psqlscan.l): in CREATE [OR REPLACE] FUNCTION|
        // PROCEDURE, BEGIN (and CASE within it) outside parentheses opens a
        // block that END closes; the statement ends at a `;` outside blocks.
        let inside = self.routine_depth > 0;
        if inside || routine_header(&words) {
            for word in top_level_words(&text) {
                match word.as_str() {
                    "BEGIN" => self.routine_depth += 1,
                    "CASE" if self.routine_depth > 0 => self.routine_depth += 1,
                    "END" if self.routine_depth > 0 => self.routine_depth -= 1,
                    _ => {}
                }
            }
        }
        if inside {
            // Part of one CREATE statement the server parses whole: nothing
            // in it runs now (a COMMIT there is a syntax error).
            return Ok(());
        }
        if TRANSACTION_CONTROL.contains(&first) {
            let pg_dumps_own =
                words.len() == 1 && (first == "BEGIN" || (first == "COMMIT" && neutralized));
            if !pg_dumps_own {
                let shown: String = text.trim().chars().take(80).collect();
                return Err(self.refuse(format!(
                    "transaction control {shown:?} (the restore's own transaction decides what is \
                     committed)"
                )));
            }
        }
        if first != "COPY" {
            return Ok(());
        }
        let from_stdin = words.len() >= 3
            && words[words.len() - 2] == "FROM"
            && words[words.len() - 1] == "STDIN";
        if words.iter().any(|w| w == "PROGRAM") || !from_stdin {
            let shown: String = text.trim().chars().take(80).collect();
            return Err(self.refuse(format!(
                "{shown:?} is not the `COPY … FROM stdin` that pg_dump writes"
            )));
        }
        self.state = State::CopyData {
            line_len: 0,
            first: [0; 2],
        };
        // The rest of the statement's line (normally just its newline) comes
        // before the data; a `\.` on it would be nonsense, so data starts here.
        Ok(())
    }

    fn meta_command(&self, at_line_start: bool, text: &[u8]) -> Result<(), Refusal> {
        let text = String::from_utf8_lossy(text);
        let mut parts = text.split_whitespace();
        let command = parts.next().unwrap_or("");
        let key = parts.next();
        let allowed = at_line_start
            && matches!(command, "restrict" | "unrestrict")
            && key.is_some_and(|k| k.bytes().all(|b| b.is_ascii_alphanumeric()))
            && parts.next().is_none();
        if allowed {
            return Ok(());
        }
        let shown: String = text.chars().filter(|c| !c.is_control()).take(40).collect();
        Err(self.refuse(format!("psql meta-command \\{shown}")))
    }
}

/// Whether a statement's words begin `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
fn routine_header(words: &[String]) -> bool {
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    w(0) == "CREATE"
        && (matches!(w(1), "FUNCTION" | "PROCEDURE")
            || (w(1) == "OR" && w(2) == "REPLACE" && matches!(w(3), "FUNCTION" | "PROCEDURE")))
}

/// The words of a statement outside parentheses, upper-cased (quoted parts
/// are already folded to `"`).
fn top_level_words(text: &str) -> Vec<String> {
    let mut depth = 0u32;
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' || c == '$' {
            word.push(c.to_ascii_uppercase());
            continue;
        }
        if depth == 0 && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.clear();
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if depth == 0 && !word.is_empty() {
        words.push(word);
    }
    words
}

/// Checks a whole dump (for tests and small inputs).
pub fn check(sql: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut guard = SqlGuard::default();
    let mut out = Vec::with_capacity(sql.len());
    guard.push(sql, &mut out)?;
    guard.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\n\
        SET standard_conforming_strings = on;\n\
        CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $_$ SELECT '\\! not a command' $_$;\n\
        COMMENT ON TABLE public.t IS 'a \\o quoted backslash';\n\
        CREATE TABLE \"we\\ird\" (a int);\n\
        INSERT INTO x VALUES (E'it\\'s \\\\ fine');\n\
        /* a /* nested */ \\! comment */\n\
        COPY public.t (a, b) FROM stdin;\n1\t\\N\n2\tback\\\\slash \\! data\n\\.\n\n\
        COPY public.\"Odd \"\"name\"\"\" (a) FROM stdin;\n\\.\n\
        -- \\! in a comment\n\
        \\unrestrict AbC123\n";

    #[test]
    fn a_pg_dump_passes_and_its_restrict_lines_are_blanked() {
        let out = check(DUMP.as_bytes()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().count(),
            DUMP.lines().count(),
            "line numbers kept"
        );
        assert!(!text.contains("\\restrict") && !text.contains("\\unrestrict"));
        assert!(text.contains("2\tback\\\\slash \\! data\n\\.\n"));
    }

    #[test]
    fn meta_commands_and_copy_program_are_refused_with_their_line() {
        for (sql, line, needle) in [
            ("SELECT 1;\n\\! id > /tmp/pwned\n", 2, "meta-command \\! id"),
            ("SELECT 1; \\o /tmp/x\n", 1, "meta-command \\o"),
            ("\\connect other\n", 1, "meta-command \\connect"),
            ("\\restrict a b\n", 1, "meta-command \\restrict a b"),
            ("SELECT 'x' \\gexec\n", 1, "meta-command \\gexec"),
            (
                "COPY t FROM PROGRAM 'id';\n",
                1,
                "is not the `COPY … FROM stdin`",
            ),
            (
                "copy t (a) to program 'id';\n",
                1,
                "is not the `COPY … FROM stdin`",
            ),
            (
                "COPY t FROM '/etc/passwd';\n",
                1,
                "is not the `COPY … FROM stdin`",
            ),
            ("SELECT $$a$$;\n\\! x\n", 2, "meta-command \\!"),
            ("SELECT 'a''b'; \\! x\n", 1, "meta-command \\!"),
            ("SELECT E'a\\'b'; \\! x\n", 1, "meta-command \\!"),
            ("SELECT \"a\"\"b\"; \\! x\n", 1, "meta-command \\!"),
            ("/* /* */ */ \\! x\n", 1, "meta-command \\!"),
            (
                "COPY t (a) FROM stdin;\n1\n\\.\n\\! x\n",
                4,
                "meta-command \\!",
            ),
        ] {
            let err = check(sql.as_bytes()).unwrap_err();
            assert_eq!(err.line, line, "{sql:?}: {err}");
            assert!(err.what.contains(needle), "{sql:?}: {err}");
        }
    }

    #[test]
    fn a_string_or_copy_block_left_open_is_refused() {
        assert!(check(b"SELECT 'open").is_err());
        assert!(check(b"COPY t (a) FROM stdin;\n1\n").is_err());
        let err = check(b"SELECT 1;\nDROP TABLE t").unwrap_err();
        assert!(err.what.contains("no `;`"), "{err}");
    }

    /// pg_dump's own wrapper around large objects (PostgreSQL 16 and older).
    const LARGE_OBJECTS: &str = "--\n-- Data for Name: BLOBS; Type: BLOBS\n--\n\nBEGIN;\n\n\
        SELECT pg_catalog.lo_open('16385', 131072);\n\
        SELECT pg_catalog.lowrite(0, '\\x6869');\n\
        SELECT pg_catalog.lo_close(0);\n\nCOMMIT;\n\n--\n-- done\n--\n";

    #[test]
    fn the_dumps_commit_never_reaches_psql_as_a_commit() {
        let text = String::from_utf8(check(LARGE_OBJECTS.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            text,
            LARGE_OBJECTS.replace("COMMIT;", "SELECT;"),
            "only the COMMIT changed"
        );
        for sql in [
            "commit;\n",
            "-- c\n/* d */\n  Commit ;\n",
            "/* e */COMMIT;\n",
        ] {
            let text = String::from_utf8(check(sql.as_bytes()).unwrap()).unwrap();
            assert!(
                !text.to_ascii_uppercase().contains("COMMIT"),
                "{sql:?} -> {text:?}"
            );
        }
    }

    #[test]
    fn any_other_transaction_control_is_refused() {
        for sql in [
            "ROLLBACK;\n",
            "abort;\n",
            "END;\n",
            "COMMIT AND CHAIN;\n",
            "COMMIT PREPARED 'x';\n",
            "START TRANSACTION;\n",
            "BEGIN ISOLATION LEVEL SERIALIZABLE;\n",
            "SAVEPOINT a;\n",
            "RELEASE a;\n",
            "PREPARE TRANSACTION 'x';\n",
            "SELECT 1; rollback;\n",
        ] {
            let err = check(sql.as_bytes()).unwrap_err();
            assert!(err.what.contains("transaction control"), "{sql:?}: {err}");
        }
        // Words that only begin like a keyword are ordinary SQL.
        assert!(check(b"SELECT committed FROM t; CREATE TABLE ending (a int);\n").is_ok());
    }

    /// Where the guard once read a dump differently from psql and the server
    /// (found by attacking it): each time a COMMIT went through as text the
    /// guard took for quoted.
    #[test]
    fn the_guard_reads_names_strings_and_comments_as_the_server_does() {
        // `$` inside a name is no dollar quote.
        let text = String::from_utf8(
            check(b"CREATE TABLE m1(a int);\nSELECT 1 AS a$$$;\nCOMMIT;\nSELECT 1 AS b$$;\n")
                .unwrap(),
        )
        .unwrap();
        assert!(!text.to_ascii_uppercase().contains("COMMIT"), "{text}");
        // A dollar quote right after another still opens.
        assert!(check(b"SELECT $a$x$a$$b$;$b$;\n").is_ok());
        // A backslash before a quote: read two ways, refused.
        let err = check(b"SELECT 'a\\' ';\nCOMMIT;\nSELECT ' ' AS x; -- '\n;\n").unwrap_err();
        assert!(err.what.contains("backslash before a quote"), "{err}");
        assert!(check(b"SELECT 'a\\\\', 'C:\\dir', E'it\\'s';\n").is_ok());
        // A comment separates words: COPY/**/t is a COPY.
        let text = String::from_utf8(
            check(b"COPY/**/public.m4 FROM stdin;\n'\n\\.\nCOMMIT;\nSELECT 1; -- '\n;\n").unwrap(),
        )
        .unwrap();
        assert!(!text.to_ascii_uppercase().contains("COMMIT"), "{text}");
        let err = check(b"COPY/**/public.t TO PROGRAM 'id';\n").unwrap_err();
        assert!(err.what.contains("is not the `COPY"), "{err}");
    }

    #[test]
    fn a_routine_body_is_one_statement_as_psql_counts_it() {
        // pg_dump (PostgreSQL 14+) writes SQL-standard bodies.
        let atomic = "CREATE FUNCTION public.f() RETURNS integer\n    LANGUAGE sql\n    \
            BEGIN ATOMIC\n SELECT CASE WHEN true THEN 1 END;\n SELECT 2;\nEND;\n\
            CREATE OR REPLACE PROCEDURE public.p() LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n";
        assert!(check(atomic.as_bytes()).is_ok());
        // After the body, transaction control is refused again.
        let err = check(format!("{atomic}ROLLBACK;\n").as_bytes()).unwrap_err();
        assert!(err.what.contains("transaction control"), "{err}");
        // BEGIN inside parentheses opens no body (psql agrees): END is END.
        let err = check(b"CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN 1;\nEND;\n")
            .unwrap_err();
        assert!(err.what.contains("transaction control"), "{err}");
    }

    /// `sql` checked as two chunks split at `split`: the outcome and what passed.
    fn check_in_two(sql: &[u8], split: usize) -> (Result<(), Refusal>, Vec<u8>) {
        let (a, b) = sql.split_at(split);
        let mut guard = SqlGuard::default();
        let mut out = Vec::new();
        let result = guard
            .push(a, &mut out)
            .and_then(|()| guard.push(b, &mut out))
            .and_then(|()| guard.finish(&mut out));
        (result, out)
    }

    #[test]
    fn a_commit_split_across_chunks_is_caught_the_same() {
        let sql = format!("{LARGE_OBJECTS}COMMIT AND CHAIN;\n");
        let whole = check(LARGE_OBJECTS.as_bytes()).unwrap();
        for split in 1..sql.len() {
            let (result, out) = check_in_two(sql.as_bytes(), split);
            assert!(result.is_err(), "split at {split}");
            assert_eq!(
                out[..whole.len().min(out.len())],
                whole[..whole.len().min(out.len())],
                "split at {split}"
            );
        }
    }

    #[test]
    fn chunk_boundaries_change_nothing() {
        let hostile = format!("{DUMP}SELECT 1; \\! id\n");
        for split in 1..hostile.len() {
            let err = check_in_two(hostile.as_bytes(), split).0.unwrap_err();
            assert_eq!(
                err.line as usize,
                DUMP.lines().count() + 1,
                "split at {split}"
            );
        }
    }
}
