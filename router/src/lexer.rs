//! A small MySQL tokenizer for classifying statements. It never fails: unknown bytes become
//! symbols, unterminated quotes end at the end of input.

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An unquoted word: keyword, identifier, `@var`, `@@var` (dots are separate symbols).
    Word(String),
    /// A back-quoted identifier, unescaped.
    Quoted(String),
    /// A single- or double-quoted string literal, unescaped.
    Str(String),
    /// A number literal as written.
    Num(String),
    /// Any other character or operator (`:=` is one symbol).
    Sym(String),
}

impl Token {
    /// Whether this is the keyword `kw` (case-insensitive).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// Whether this is the symbol `s`.
    pub fn is_sym(&self, s: &str) -> bool {
        matches!(self, Token::Sym(x) if x == s)
    }

    /// The identifier this token names, if it is a word or a quoted identifier.
    pub fn ident(&self) -> Option<&str> {
        match self {
            Token::Word(w) | Token::Quoted(w) => Some(w),
            _ => None,
        }
    }
}

/// The first version number of an executable comment that no backend runs: MariaDB marks a
/// comment never to be run with `/*M!999999 … */` (the dump's sandbox line).
const NEVER_RUN_VERSION: u64 = 200_000;

/// At a `/*` (`b[i..]`): the length of an executable comment's head (`/*!` or `/*M!` and its
/// version digits) when a backend server would run the body, `None` for a plain comment.
pub fn executable_head(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'/') || b.get(i + 1) != Some(&b'*') {
        return None;
    }
    let bang = match (b.get(i + 2), b.get(i + 3)) {
        (Some(b'!'), _) => 3,
        (Some(b'M'), Some(b'!')) => 4,
        _ => return None,
    };
    let digits = b[i + bang..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let version = std::str::from_utf8(&b[i + bang..i + bang + digits])
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    match version {
        Some(v) if v >= NEVER_RUN_VERSION => None,
        _ => Some(bang + digits),
    }
}

/// Splits SQL into tokens, skipping whitespace and comments. The body of an executable
/// comment `/*!40101 … */` (and MariaDB's `/*M! … */`) is tokenized as code.
pub fn tokenize(sql: &str) -> Vec<Token> {
    tokenize_up_to(sql, usize::MAX)
}

/// [`tokenize`], stopping after `limit` tokens.
fn tokenize_up_to(sql: &str, limit: usize) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < limit {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#'
            || (c == b'-'
                && b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()))
        {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            if let Some(head) = executable_head(b, i) {
                i += head;
                // The body is code; its closing `*/` is skipped as a symbol pair below.
            } else {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i = (i + 2).min(b.len());
            }
        } else if c == b'*' && b.get(i + 1) == Some(&b'/') {
            i += 2;
        } else if c == b'\'' || c == b'"' || c == b'`' {
            let (text, next) = quoted(b, i);
            out.push(if c == b'`' {
                Token::Quoted(text)
            } else {
                Token::Str(text)
            });
            i = next;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push(Token::Num(sql[start..i].to_string()));
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || matches!(b[i], b'_' | b'@' | b'$')
                    || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Token::Word(sql[start..i].to_string()));
        } else {
            let two = b.get(i..i + 2);
            let sym = match two {
                Some(b":=") | Some(b"<=") | Some(b">=") | Some(b"<>") | Some(b"!=") => 2,
                _ => 1,
            };
            let end = (i + sym).min(b.len());
            // Never split a multi-byte character (non-ASCII bytes are handled as words).
            out.push(Token::Sym(String::from_utf8_lossy(&b[i..end]).into_owned()));
            i = end;
        }
    }
    out
}

/// Reads a quoted token starting at `start`; returns the unescaped text and the next index.
fn quoted(b: &[u8], start: usize) -> (String, usize) {
    let q = b[start];
    let mut i = start + 1;
    let mut text = Vec::new();
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                text.push(q);
                i += 2;
                continue;
            }
            return (String::from_utf8_lossy(&text).into_owned(), i + 1);
        }
        if b[i] == b'\\' && q != b'`' && i + 1 < b.len() {
            // MySQL's escapes; `\%` and `\_` keep their backslash (LIKE patterns).
            match b[i + 1] {
                b'n' => text.push(b'\n'),
                b't' => text.push(b'\t'),
                b'r' => text.push(b'\r'),
                b'b' => text.push(8),
                b'Z' => text.push(0x1A),
                b'0' => text.push(0),
                c @ (b'%' | b'_') => text.extend_from_slice(&[b'\\', c]),
                other => text.push(other),
            }
            i += 2;
            continue;
        }
        text.push(b[i]);
        i += 1;
    }
    (String::from_utf8_lossy(&text).into_owned(), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        tokenize(sql)
            .into_iter()
            .map(|t| match t {
                Token::Word(s) | Token::Num(s) | Token::Sym(s) => s,
                Token::Quoted(s) => format!("`{s}`"),
                Token::Str(s) => format!("'{s}'"),
            })
            .collect()
    }

    #[test]
    fn executable_comments_are_found_outside_literals() {
        assert!(has_executable_comment("SELECT 1 /*!50000 , 2 */"));
        assert!(has_executable_comment("SELECT 1 /*M!100000 , 2 */"));
        assert!(!has_meaningful_executable_comment(
            "SELECT /*!40001 SQL_NO_CACHE */ `id` FROM `t`"
        ));
        assert!(has_meaningful_executable_comment(
            "SELECT /*!40001 SQL_NO_CACHE */ id FROM t /*!50000 WHERE 1 = 0 */"
        ));
        // MariaDB's never-run marker (mariadb-dump's first line) is a plain comment.
        assert!(!has_executable_comment(
            "/*M!999999 enable the sandbox mode */ SELECT 1"
        ));
        assert_eq!(
            tokenize("/*M!999999 enable the sandbox mode */ /*!40101 SET NAMES utf8mb4 */"),
            tokenize("SET NAMES utf8mb4")
        );
        assert!(!has_executable_comment(
            "SELECT '/*!50000 x */', 1 /* plain */"
        ));
        assert!(!has_executable_comment("SELECT 1 -- /*! x */"));
    }

    #[test]
    fn comments_are_skipped_and_executable_comments_kept() {
        assert_eq!(words("/* hi */ SELECT -- x\n 1"), ["SELECT", "1"]);
        assert_eq!(
            words("/*!40101 SET NAMES utf8 */"),
            ["SET", "NAMES", "utf8"]
        );
        assert_eq!(words("# c\nUSE `my``db`"), ["USE", "`my`db`"]);
    }

    #[test]
    fn strings_are_unescaped() {
        assert_eq!(
            words(r"SET @a = 'it''s \n'"),
            ["SET", "@a", "=", "'it's \n'"]
        );
    }

    #[test]
    fn system_variables_and_assignment() {
        assert_eq!(
            words("SET @@session.sql_mode:='x'"),
            ["SET", "@@session", ".", "sql_mode", ":=", "'x'"]
        );
    }

    #[test]
    fn unterminated_quote_does_not_panic() {
        assert_eq!(words("SELECT 'abc"), ["SELECT", "'abc'"]);
        assert_eq!(words("é ü"), ["é", "ü"]);
    }
}

/// Splits a multi-statement text at top-level semicolons (outside quotes and comments).
/// Stored-program definitions (`CREATE PROCEDURE … BEGIN …; … END`) contain semicolons of
/// their own, so a text starting with one is returned whole. Empty statements are dropped.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let head = tokenize_prefix(sql, 8);
    let compound = head.first().is_some_and(|t| t.is_kw("CREATE"))
        && head.iter().any(|t| {
            t.is_kw("PROCEDURE") || t.is_kw("FUNCTION") || t.is_kw("TRIGGER") || t.is_kw("EVENT")
        })
        || (head.first().is_some_and(|t| t.is_kw("BEGIN"))
            && head.get(1).is_some_and(|t| t.is_kw("NOT")));
    if compound {
        return vec![sql];
    }
    // One statement without a `;` anywhere (the usual case): no scan.
    if !sql.contains(';') {
        return if has_code(sql) { vec![sql] } else { Vec::new() };
    }
    let mut out = Vec::new();
    let mut start = 0;
    scan_code(sql, |i, c| {
        if c == b';' {
            out.push(&sql[start..i]);
            start = i + 1;
        }
    });
    if start < sql.len() {
        out.push(&sql[start.min(sql.len())..]);
    }
    out.retain(|s| has_code(s));
    out
}

/// Whether `sql` holds anything but whitespace and comments.
fn has_code(sql: &str) -> bool {
    !tokenize_up_to(sql, 1).is_empty()
}

/// Calls `f` with the index of every byte of `sql` that is code: outside string literals,
/// quoted identifiers and comments (the body of an executable comment is code).
fn scan_code(sql: &str, mut f: impl FnMut(usize, u8)) {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && q != b'`' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') && executable_head(b, i).is_none() => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            c => {
                f(i, c);
                i += 1;
            }
        }
    }
}

/// Whether `sql` holds an executable comment (`/*! … */`, `/*M! … */`) outside literals:
/// a server runs its body, which sqlparser reads as a comment.
pub fn has_executable_comment(sql: &str) -> bool {
    if !sql.contains("/*") {
        return false;
    }
    let b = sql.as_bytes();
    let mut found = false;
    scan_code(sql, |i, c| {
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            found = true;
        }
    });
    found
}

/// Words an executable comment may hold without changing a statement's result: query-cache
/// and scheduling hints (mysqldump writes `SELECT /*!40001 SQL_NO_CACHE */ …`).
const RESULT_NEUTRAL_HINTS: [&str; 5] = [
    "SQL_NO_CACHE",
    "SQL_CACHE",
    "SQL_BUFFER_RESULT",
    "HIGH_PRIORITY",
    "STRAIGHT_JOIN",
];

/// Whether `sql` holds an executable comment whose body could change what the statement
/// does (anything but [`RESULT_NEUTRAL_HINTS`]): a statement myshard rebuilds from its parse,
/// which has no such body, must then be refused.
pub fn has_meaningful_executable_comment(sql: &str) -> bool {
    if !has_executable_comment(sql) {
        return false;
    }
    let b = sql.as_bytes();
    let mut meaningful = false;
    scan_code(sql, |i, _| {
        let Some(head) = executable_head(b, i) else {
            return;
        };
        let body_start = i + head;
        let body_end = sql[body_start..]
            .find("*/")
            .map_or(sql.len(), |e| body_start + e);
        let neutral = tokenize(&sql[body_start..body_end]).iter().all(|t| {
            matches!(t, Token::Word(w) if RESULT_NEUTRAL_HINTS.iter().any(|h| w.eq_ignore_ascii_case(h)))
        });
        meaningful |= !neutral;
    });
    meaningful
}

/// Byte offsets of the `?` parameter markers of a prepared statement's text (outside
/// literals, quoted identifiers and comments).
pub fn placeholders(sql: &str) -> Vec<usize> {
    let mut out = Vec::new();
    scan_code(sql, |i, c| {
        if c == b'?' {
            out.push(i);
        }
    });
    out
}

fn tokenize_prefix(sql: &str, n: usize) -> Vec<Token> {
    // Statement heads are short; tokenizing a bounded prefix keeps huge statements cheap.
    let mut end = sql.len().min(512);
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    tokenize_up_to(&sql[..end], n)
}

#[cfg(test)]
mod split_tests {
    use super::split_statements;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        assert_eq!(
            split_statements("SELECT ';'; SELECT 2 /* ; */; -- x;\n"),
            ["SELECT ';'", " SELECT 2 /* ; */"]
        );
    }

    #[test]
    fn keeps_stored_programs_whole() {
        let sql = "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END";
        assert_eq!(split_statements(sql), [sql]);
    }

    #[test]
    fn placeholders_skip_literals_and_comments() {
        let sql = "SELECT '?', `a?`, ? /* ? */ FROM t WHERE a = ? -- ?\n AND b = \"?\"";
        let at = super::placeholders(sql);
        assert_eq!(at.len(), 2);
        assert!(at.iter().all(|&i| &sql[i..i + 1] == "?"));
    }

    #[test]
    fn single_statement_without_semicolon() {
        assert_eq!(split_statements("SELECT 1"), ["SELECT 1"]);
        assert!(split_statements(" ; ").is_empty());
    }
}

/// The select items of a SELECT as written (between the SELECT keyword and its FROM, split at
/// top-level commas), for column labels that must match the client's own text.
/// `None` when the statement does not start with SELECT.
pub fn select_item_texts(sql: &str) -> Option<Vec<String>> {
    let b = sql.as_bytes();
    let lower = sql.to_ascii_lowercase();
    let lb = lower.as_bytes();
    let is_word_at = |i: usize, w: &str| {
        lb[i..].starts_with(w.as_bytes())
            && (i == 0 || !(lb[i - 1].is_ascii_alphanumeric() || lb[i - 1] == b'_'))
            && lb
                .get(i + w.len())
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
    };
    let mut i = 0;
    // Skip leading whitespace and comments to the SELECT keyword.
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"/*") {
            i = lower[i..].find("*/").map(|p| i + p + 2)?;
        } else {
            break;
        }
    }
    if !is_word_at(i, "select") {
        return None;
    }
    i += 6;
    let mut items = Vec::new();
    let mut start = i;
    let mut depth = 0i32;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' => depth += 1,
            b')' => depth -= 1,
            b',' if depth == 0 => {
                items.push(sql[start..i].trim().to_string());
                start = i + 1;
            }
            _ if depth == 0 && (is_word_at(i, "from") || is_word_at(i, "into")) => {
                items.push(sql[start..i].trim().to_string());
                return Some(strip_modifiers(items));
            }
            _ => {}
        }
        i += 1;
    }
    items.push(sql[start..].trim().trim_end_matches(';').trim().to_string());
    Some(strip_modifiers(items))
}

fn strip_modifiers(mut items: Vec<String>) -> Vec<String> {
    if let Some(first) = items.first_mut() {
        loop {
            let lower = first.to_ascii_lowercase();
            let stripped = [
                "distinctrow ",
                "distinct ",
                "all ",
                "sql_no_cache ",
                "sql_cache ",
                "straight_join ",
                "high_priority ",
                "sql_calc_found_rows ",
            ]
            .iter()
            .find(|m| lower.starts_with(*m))
            .map(|m| first[m.len()..].trim_start().to_string());
            match stripped {
                Some(s) => *first = s,
                None => break,
            }
        }
    }
    items
}

#[cfg(test)]
mod item_tests {
    use super::select_item_texts;

    #[test]
    fn items_keep_their_spelling() {
        assert_eq!(
            select_item_texts("select  count(*), sum( a ) as s, 'x,y' from t where z")
                .expect("items"),
            ["count(*)", "sum( a ) as s", "'x,y'"]
        );
        assert_eq!(
            select_item_texts("SELECT DISTINCT a FROM t").expect("items"),
            ["a"]
        );
        assert_eq!(select_item_texts("SELECT 1 + 1").expect("items"), ["1 + 1"]);
        assert!(select_item_texts("UPDATE t SET a = 1").is_none());
    }
}
