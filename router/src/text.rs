//! Statement text and literals, exactly.
//!
//! Inside myshard every statement is held in one *canonical* form: UTF-8 text read with
//! MySQL's default lexical rules (backslash escapes on, `"` quotes strings). A client's text is
//! brought into that form once, when it arrives ([`canonical`]), and a statement leaves for a
//! shard in the client session's own form ([`for_session`]) — so the router, the rewriter and
//! everything between them never need to know the session's `sql_mode` or character set.
//!
//! - Under `NO_BACKSLASH_ESCAPES` a backslash is an ordinary character; under `ANSI_QUOTES`
//!   `"…"` is an identifier. Both are translated at the two boundaries.
//! - Under GBK, Big5, Shift-JIS and GB18030 a 0x5C byte can be the second byte of a character;
//!   the scanner walks characters, never lone bytes.
//! - A literal whose bytes are not UTF-8 (binary data, text in a non-UTF-8 character set) is
//!   written as a hex literal with its character-set introducer (`_binary X'FF5C'`), which
//!   denotes the same bytes in the same character set.
//!
//! [`quote`] is the one function that turns a value myshard holds into a literal, and
//! [`sqlparser_text`] prepares canonical text for sqlparser, whose unescaping differs from
//! MySQL's (`\a`, `\f`). Statements are never re-printed from sqlparser's AST with its
//! string `Display`: see `myshard_sql_rewrite::render`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// How a character set lays out multi-byte characters, as far as the lexer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// UTF-8 (`utf8mb3`, `utf8mb4`): text must be valid UTF-8.
    Utf8,
    /// GBK: lead 0x81–0xFE, trail 0x40–0x7E or 0x80–0xFE.
    Gbk,
    /// GB18030: as GBK, plus four-byte characters (lead, 0x30–0x39, lead, 0x30–0x39).
    Gb18030,
    /// Big5: lead 0xA1–0xF9, trail 0x40–0x7E or 0xA1–0xFE.
    Big5,
    /// Shift-JIS and CP932: lead 0x81–0x9F or 0xE0–0xFC, trail 0x40–0x7E or 0x80–0xFC.
    Sjis,
    /// Every other character set: no trail byte is ever ASCII.
    Other,
}

impl Layout {
    fn of(charset: &str) -> Layout {
        match charset.to_ascii_lowercase().as_str() {
            "utf8" | "utf8mb3" | "utf8mb4" => Layout::Utf8,
            "gbk" => Layout::Gbk,
            "gb18030" => Layout::Gb18030,
            "big5" => Layout::Big5,
            "sjis" | "cp932" => Layout::Sjis,
            _ => Layout::Other,
        }
    }

    /// The length of the multi-byte character starting at `b[i]`, or 1.
    fn char_len(self, b: &[u8], i: usize) -> usize {
        let lead = b[i];
        let at = |k: usize| b.get(i + k).copied();
        let two = |lead_ok: bool, trail: fn(u8) -> bool| match at(1) {
            Some(t) if lead_ok && trail(t) => 2,
            _ => 1,
        };
        match self {
            Layout::Utf8 | Layout::Other => 1,
            Layout::Gbk => two((0x81..=0xFE).contains(&lead), |t| {
                (0x40..=0x7E).contains(&t) || (0x80..=0xFE).contains(&t)
            }),
            Layout::Gb18030 => {
                let lead_ok = (0x81..=0xFE).contains(&lead);
                let four = lead_ok
                    && at(1).is_some_and(|c| c.is_ascii_digit())
                    && at(2).is_some_and(|c| (0x81..=0xFE).contains(&c))
                    && at(3).is_some_and(|c| c.is_ascii_digit());
                if four {
                    4
                } else {
                    two(lead_ok, |t| {
                        (0x40..=0x7E).contains(&t) || (0x80..=0xFE).contains(&t)
                    })
                }
            }
            Layout::Big5 => two((0xA1..=0xF9).contains(&lead), |t| {
                (0x40..=0x7E).contains(&t) || (0xA1..=0xFE).contains(&t)
            }),
            Layout::Sjis => two(
                (0x81..=0x9F).contains(&lead) || (0xE0..=0xFC).contains(&lead),
                |t| (0x40..=0x7E).contains(&t) || (0x80..=0xFC).contains(&t),
            ),
        }
    }
}

/// The lexical rules of a client session: its `sql_mode` flags and its character set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMode {
    /// Backslash escapes in strings (off under `NO_BACKSLASH_ESCAPES`).
    pub backslash_escapes: bool,
    /// `"…"` is an identifier (`ANSI_QUOTES`, part of `ANSI`).
    pub ansi_quotes: bool,
    /// `character_set_client`, lower case.
    pub charset: String,
    layout: Layout,
}

impl Default for TextMode {
    fn default() -> Self {
        TextMode {
            backslash_escapes: true,
            ansi_quotes: false,
            charset: "utf8mb4".into(),
            layout: Layout::Utf8,
        }
    }
}

impl TextMode {
    /// The rules for a session's `sql_mode` value and `character_set_client`.
    pub fn new(sql_mode: &str, charset: &str) -> TextMode {
        let flags: Vec<String> = sql_mode
            .split(',')
            .map(|f| f.trim().to_ascii_uppercase())
            .collect();
        let has = |f: &str| flags.iter().any(|x| x == f);
        let charset = charset.trim().to_ascii_lowercase();
        TextMode {
            backslash_escapes: !has("NO_BACKSLASH_ESCAPES"),
            ansi_quotes: has("ANSI_QUOTES") || has("ANSI"),
            layout: Layout::of(&charset),
            charset,
        }
    }

    /// Whether the session's text is already canonical (default rules over UTF-8).
    pub fn is_canonical(&self) -> bool {
        self.backslash_escapes && !self.ansi_quotes && self.layout == Layout::Utf8
    }

    /// The introducer for a hex literal of these bytes as text of the session: its own
    /// character set when the bytes are text in it (`_gbk`), else `_binary` — a server reads
    /// a plain literal's ill-formed bytes as they are, but refuses them behind an introducer.
    pub fn hex_introducer(&self, bytes: &[u8]) -> String {
        if self.is_well_formed(bytes) {
            self.introducer()
        } else {
            "_binary".into()
        }
    }

    /// Whether `bytes` are well-formed text in the session's character set.
    fn is_well_formed(&self, bytes: &[u8]) -> bool {
        match self.layout {
            Layout::Utf8 => std::str::from_utf8(bytes).is_ok(),
            Layout::Other => true,
            layout => {
                let mut i = 0;
                while i < bytes.len() {
                    let n = layout.char_len(bytes, i);
                    let single = bytes[i] < 0x80
                        || (layout == Layout::Sjis && (0xA1..=0xDF).contains(&bytes[i]));
                    if n == 1 && !single {
                        return false;
                    }
                    i += n;
                }
                true
            }
        }
    }

    /// The introducer for text in the session's character set (`_gbk`).
    pub fn introducer(&self) -> String {
        let cs = match self.charset.as_str() {
            "utf8" => "utf8mb3",
            "" => "utf8mb4",
            other => other,
        };
        format!("_{cs}")
    }
}

/// A statement whose bytes cannot be read in the session's character set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid {charset} character string: {what}")]
pub struct TextError {
    /// The session's character set.
    pub charset: String,
    /// Where the offending bytes are.
    pub what: String,
}

/// One piece of a statement, as the scanner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// Code: keywords, names, numbers, operators, whitespace, executable-comment bodies.
    Code,
    /// A string literal with its quotes; `quote` is `'` or `"`.
    Str { quote: u8 },
    /// A quoted identifier with its quotes (backticks, or `"` under ANSI_QUOTES).
    Ident { quote: u8 },
    /// A comment that is not code.
    Comment,
}

/// Splits `b` into pieces under `mode`'s rules. Pieces cover `b` exactly, in order.
fn pieces(b: &[u8], mode: &TextMode) -> Vec<(Piece, usize, usize)> {
    let mut out: Vec<(Piece, usize, usize)> = Vec::new();
    let mut code_start = 0;
    let mut i = 0;
    let push_code = |out: &mut Vec<(Piece, usize, usize)>, from: usize, to: usize| {
        if from < to {
            out.push((Piece::Code, from, to));
        }
    };
    while i < b.len() {
        let c = b[i];
        let end = match c {
            b'\'' | b'"' | b'`' => {
                let ident = c == b'`' || (c == b'"' && mode.ansi_quotes);
                let escapes = !ident && mode.backslash_escapes;
                let mut j = i + 1;
                loop {
                    if j >= b.len() {
                        break j;
                    }
                    let n = mode.layout.char_len(b, j);
                    if n > 1 {
                        j += n;
                    } else if b[j] == b'\\' && escapes {
                        j = (j + 1 + mode.layout.char_len(b, (j + 1).min(b.len() - 1)))
                            .min(b.len());
                    } else if b[j] == c {
                        if b.get(j + 1) == Some(&c) {
                            j += 2;
                        } else {
                            break j + 1;
                        }
                    } else {
                        j += 1;
                    }
                }
                .min(b.len())
            }
            b'#' => line_end(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                line_end(b, i)
            }
            b'/' if b.get(i + 1) == Some(&b'*')
                && crate::lexer::executable_head(b, i).is_none() =>
            {
                let mut j = i + 2;
                while j + 1 < b.len() && !(b[j] == b'*' && b[j + 1] == b'/') {
                    j += 1;
                }
                (j + 2).min(b.len())
            }
            _ => {
                i += mode.layout.char_len(b, i);
                continue;
            }
        };
        push_code(&mut out, code_start, i);
        let piece = match c {
            b'`' => Piece::Ident { quote: c },
            b'"' if mode.ansi_quotes => Piece::Ident { quote: c },
            b'\'' | b'"' => Piece::Str { quote: c },
            _ => Piece::Comment,
        };
        out.push((piece, i, end));
        i = end;
        code_start = end;
    }
    push_code(&mut out, code_start, b.len());
    out
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

/// The value of a quoted string (`body` includes its quotes) under `mode`'s rules, as MySQL
/// reads it: `\0 \' \" \b \n \r \t \Z \\` are escapes, `\%` and `\_` keep their backslash,
/// any other escaped character stands for itself, a doubled quote is one quote.
pub fn unquote(body: &[u8], mode: &TextMode) -> Vec<u8> {
    let Some((&q, rest)) = body.split_first() else {
        return Vec::new();
    };
    let inner = match rest.last() {
        Some(&last) if last == q && !rest.is_empty() => &rest[..rest.len() - 1],
        _ => rest,
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let n = mode.layout.char_len(inner, i);
        if n > 1 {
            out.extend_from_slice(&inner[i..(i + n).min(inner.len())]);
            i += n;
            continue;
        }
        let c = inner[i];
        if c == b'\\' && mode.backslash_escapes && i + 1 < inner.len() {
            let next = inner[i + 1];
            match next {
                b'0' => out.push(0),
                b'b' => out.push(8),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'Z' => out.push(0x1A),
                b'%' | b'_' => out.extend_from_slice(&[b'\\', next]),
                _ => {
                    let n = mode.layout.char_len(inner, i + 1);
                    out.extend_from_slice(&inner[i + 1..(i + 1 + n).min(inner.len())]);
                    i += 1 + n;
                    continue;
                }
            }
            i += 2;
        } else if c == q && inner.get(i + 1) == Some(&q) {
            out.push(q);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Appends `value` as a single-quoted literal under `mode`'s escape rules (the value must be
/// text the session's character set reads as written).
fn push_quoted(out: &mut String, value: &str, backslash_escapes: bool) {
    out.reserve(value.len() + 2);
    out.push('\'');
    for ch in value.chars() {
        match ch {
            '\'' => out.push_str("''"),
            '\\' if backslash_escapes => out.push_str("\\\\"),
            '\0' if backslash_escapes => out.push_str("\\0"),
            '\u{1a}' if backslash_escapes => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2 + 3);
    out.push_str("X'");
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out.push('\'');
}

/// The one way myshard writes a value as a literal of canonical text: UTF-8 text as a quoted
/// string (`\`, `'`, NUL and `\Z` escaped), any other bytes as a hex literal introduced by
/// `introducer` (`_binary`, or the character set the bytes are in, e.g. `_gbk`), so that the
/// literal denotes exactly these bytes. Never fails, never loses a byte.
pub fn quote(value: &[u8], introducer: &str) -> String {
    let mut out = String::new();
    match std::str::from_utf8(value) {
        Ok(text) => push_quoted(&mut out, text, true),
        Err(_) => {
            out.push_str(introducer);
            out.push(' ');
            push_hex(&mut out, value);
        }
    }
    out
}

/// A text value in the session's character set (a parameter, a fetched text cell) as a
/// literal of canonical text: quoted when canonical text can hold it as written, otherwise
/// hex introduced by the session's character set.
pub fn quote_in(value: &[u8], mode: &TextMode) -> String {
    match ascii_or_utf8(value, mode) {
        Some(text) => {
            let mut out = String::new();
            push_quoted(&mut out, text, true);
            out
        }
        None => {
            let mut out = mode.hex_introducer(value);
            out.push(' ');
            push_hex(&mut out, value);
            out
        }
    }
}

/// The bytes a literal written by [`quote`], [`quote_in`] or [`quote_portable`] stands for.
pub fn literal_value(lit: &str) -> Option<Vec<u8>> {
    let lit = lit.trim();
    if lit.starts_with('\'') {
        return Some(unquote(lit.as_bytes(), &TextMode::default()));
    }
    let hex = lit
        .split_once(' ')
        .filter(|(intro, _)| intro.starts_with('_'))
        .map_or(lit, |(_, rest)| rest.trim());
    let digits = hex.strip_prefix("X'")?.strip_suffix('\'')?;
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A literal that means the same under every `sql_mode` (for statements a backend connection
/// reads before the session's mode is known to be in force): quoted when it holds no backslash
/// and is UTF-8, hex with `introducer` otherwise.
pub fn quote_portable(value: &[u8], introducer: &str) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !text.contains(['\\', '\0']) => {
            let mut out = String::new();
            push_quoted(&mut out, text, false);
            out
        }
        _ => {
            let mut out = String::from(introducer);
            out.push(' ');
            push_hex(&mut out, value);
            out
        }
    }
}

/// An identifier quoted with backticks, embedded backticks doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The introducer written right before the string at `at` (`_binary'…'`, `_gbk '…'`), if any:
/// returns its start in `out`.
fn introducer_before(out: &str) -> Option<usize> {
    let trimmed = out.trim_end();
    let word_start = trimmed
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .map_or(0, |p| p + 1);
    let word = &trimmed[word_start..];
    (word.len() > 1 && word.starts_with('_')).then_some(word_start)
}

/// Whether `out` ends with the `N` of a national string literal (`N'…'`).
fn ends_with_national(out: &str) -> bool {
    let b = out.as_bytes();
    matches!(b.last(), Some(b'N' | b'n'))
        && b.len()
            .checked_sub(2)
            .is_none_or(|p| !(b[p].is_ascii_alphanumeric() || b[p] == b'_' || b[p] == b'$'))
}

/// Brings a client's statement into canonical form. Borrowed (no work) for sessions under
/// default rules whose text is UTF-8; otherwise every string literal that needs it is written
/// again with the same value, and `"identifiers"` under ANSI_QUOTES become `` `identifiers` ``.
pub fn canonical<'a>(bytes: &'a [u8], mode: &TextMode) -> Result<Cow<'a, str>, TextError> {
    if mode.is_canonical() {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Ok(Cow::Borrowed(s));
        }
    }
    let not_text = |what: &str| TextError {
        charset: mode.charset.clone(),
        what: what.to_string(),
    };
    let mut out = String::with_capacity(bytes.len() + 16);
    for (piece, from, to) in pieces(bytes, mode) {
        let raw = &bytes[from..to];
        match piece {
            Piece::Code => {
                let text = ascii_or_utf8(raw, mode)
                    .ok_or_else(|| not_text("a name or keyword outside quotes"))?;
                out.push_str(text);
            }
            Piece::Comment => match ascii_or_utf8(raw, mode) {
                Some(text) => out.push_str(text),
                None => out.push(' '),
            },
            Piece::Ident { quote } => {
                let name = unquote(
                    raw,
                    &TextMode {
                        backslash_escapes: false,
                        ..mode.clone()
                    },
                );
                let name = ascii_or_utf8(&name, mode)
                    .ok_or_else(|| not_text("a quoted identifier"))?
                    .to_string();
                match (quote, ascii_or_utf8(raw, mode)) {
                    (b'`', Some(text)) => out.push_str(text),
                    _ => out.push_str(&quote_ident(&name)),
                }
            }
            Piece::Str { .. } => {
                let readable = ascii_or_utf8(raw, mode);
                let plain = mode.backslash_escapes || !raw.contains(&b'\\');
                match readable {
                    Some(text) if plain => out.push_str(text),
                    _ => {
                        let value = unquote(raw, mode);
                        match ascii_or_utf8(&value, mode) {
                            Some(text) => push_quoted(&mut out, text, true),
                            None => {
                                if ends_with_national(&out) {
                                    out.pop();
                                    out.push_str(if std::str::from_utf8(&value).is_ok() {
                                        "_utf8mb3"
                                    } else {
                                        "_binary"
                                    });
                                } else if introducer_before(&out).is_none() {
                                    out.push_str(&mode.hex_introducer(&value));
                                }
                                out.push(' ');
                                push_hex(&mut out, &value);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// The bytes as text in canonical form: UTF-8 under a UTF-8 character set, ASCII under any
/// other (whose non-ASCII bytes mean other characters than UTF-8's).
fn ascii_or_utf8<'b>(bytes: &'b [u8], mode: &TextMode) -> Option<&'b str> {
    if mode.layout == Layout::Utf8 || bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// Canonical text in the session's own form, for a backend connection that runs under the
/// session's `sql_mode` and character set. Borrowed (no work) for default sessions.
pub fn for_session<'a>(sql: &'a str, mode: &TextMode) -> Cow<'a, str> {
    if mode.is_canonical() {
        return Cow::Borrowed(sql);
    }
    let canonical_rules = TextMode::default();
    let b = sql.as_bytes();
    let all = pieces(b, &canonical_rules);
    let needs_work = all.iter().any(|&(p, from, to)| match p {
        Piece::Str { quote } => {
            let raw = &b[from..to];
            (quote == b'"' && mode.ansi_quotes)
                || (!mode.backslash_escapes && raw.contains(&b'\\'))
                || (mode.layout != Layout::Utf8 && !raw.is_ascii())
        }
        _ => false,
    });
    if !needs_work {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    for (piece, from, to) in all {
        let raw = &sql[from..to];
        match piece {
            Piece::Str { .. } => {
                let value = unquote(raw.as_bytes(), &canonical_rules);
                match std::str::from_utf8(&value) {
                    Ok(text) if mode.layout == Layout::Utf8 || text.is_ascii() => {
                        push_quoted(&mut out, text, mode.backslash_escapes)
                    }
                    _ => {
                        if introducer_before(&out).is_none() {
                            out.push_str("_utf8mb4");
                        }
                        out.push(' ');
                        push_hex(&mut out, &value);
                    }
                }
            }
            _ => out.push_str(raw),
        }
    }
    Cow::Owned(out)
}

/// Canonical text as sqlparser must see it to read every literal's value as MySQL does:
/// - sqlparser's MySQL dialect unescapes `\a` and `\f` (MySQL reads `a` and `f`), so every
///   string holding a backslash is written again with only `\\`, `\0` and `''` escapes;
/// - sqlparser reads `0x41` and `X'41'` alike and prints both as `X'41'`, which MariaDB reads
///   as a string where `0x41` is a number: `0x41` reaches sqlparser as `X'0x41'`, a hex value
///   myshard's printer writes back as `0x41` (see [`HEX_NUMBER_PREFIX`]).
///
/// Borrowed when there is nothing to change.
pub fn sqlparser_text(sql: &str) -> Cow<'_, str> {
    if !sql.contains('\\') && !sql.contains("0x") {
        return Cow::Borrowed(sql);
    }
    let rules = TextMode::default();
    let b = sql.as_bytes();
    let all = pieces(b, &rules);
    let hex_number_at = |from: usize, to: usize| hex_numbers(&b[from..to]).next().is_some();
    if !all.iter().any(|&(p, from, to)| match p {
        Piece::Str { .. } => b[from..to].contains(&b'\\'),
        Piece::Code => hex_number_at(from, to),
        _ => false,
    }) {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    for (piece, from, to) in all {
        let raw = &sql[from..to];
        match piece {
            Piece::Code => {
                let mut last = 0;
                for (s, e) in hex_numbers(raw.as_bytes()) {
                    out.push_str(&raw[last..s]);
                    out.push_str("X'");
                    out.push_str(&raw[s..e]);
                    out.push('\'');
                    last = e;
                }
                out.push_str(&raw[last..]);
            }
            Piece::Str { quote } if raw.contains('\\') => {
                let value = unquote(raw.as_bytes(), &rules);
                let text = String::from_utf8_lossy(&value);
                let q = quote as char;
                out.push(q);
                for ch in text.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '\0' => out.push_str("\\0"),
                        c if c == q => {
                            out.push(q);
                            out.push(q);
                        }
                        c => out.push(c),
                    }
                }
                out.push(q);
            }
            _ => out.push_str(raw),
        }
    }
    Cow::Owned(out)
}

/// Canonical text with names replaced: in code, and as whole string literals (`SET
/// collation_connection = 'x'`); a literal that merely contains a name keeps every byte.
/// Borrowed when nothing is replaced.
pub fn replace_names<'a>(sql: &'a str, replacements: &[(&str, &str)]) -> Cow<'a, str> {
    if !replacements.iter().any(|(from, _)| sql.contains(from)) {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    for (piece, from, to) in pieces(sql.as_bytes(), &TextMode::default()) {
        let raw = &sql[from..to];
        match piece {
            Piece::Code => {
                let mut text = raw.to_string();
                for (a, b) in replacements {
                    text = text.replace(a, b);
                }
                out.push_str(&text);
            }
            Piece::Str { .. } => {
                let value = unquote(raw.as_bytes(), &TextMode::default());
                match replacements.iter().find(|(a, _)| a.as_bytes() == value) {
                    Some((_, b)) => push_quoted(&mut out, b, true),
                    None => out.push_str(raw),
                }
            }
            _ => out.push_str(raw),
        }
    }
    Cow::Owned(out)
}

/// `sql` with system-variable names renamed (`from` → `to`, case-insensitive): a whole word
/// outside literals, quoted names and comments, written bare (`SET SESSION name = …`) or
/// after `@@` / a scope (`@@session.name`), never a user variable (`@name`) or part of a
/// longer name. Every other byte is kept.
pub fn replace_system_variables<'a>(sql: &'a str, names: &[(&str, &str)]) -> Cow<'a, str> {
    let lower = sql.to_ascii_lowercase();
    if !names.iter().any(|(from, _)| lower.contains(from)) {
        return Cow::Borrowed(sql);
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$') || c >= 0x80;
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    for (piece, from, to) in pieces(b, &TextMode::default()) {
        if !matches!(piece, Piece::Code) {
            out.push_str(&sql[from..to]);
            continue;
        }
        let mut i = from;
        let mut copied = from;
        while i < to {
            let hit = names.iter().find(|(name, _)| {
                let end = i + name.len();
                end <= to
                    && lower.as_bytes()[i..end] == *name.as_bytes()
                    && (end == b.len() || !word(b[end]))
                    && match i.checked_sub(1).map(|p| b[p]) {
                        None => true,
                        Some(b'@') => i >= 2 && b[i - 2] == b'@',
                        Some(c) => !word(c),
                    }
            });
            match hit {
                Some((name, replacement)) => {
                    out.push_str(&sql[copied..i]);
                    out.push_str(replacement);
                    i += name.len();
                    copied = i;
                }
                None => i += 1,
            }
        }
        out.push_str(&sql[copied..to]);
    }
    Cow::Owned(out)
}

/// The kind of a literal in a statement's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    /// A quoted string (its value unescaped).
    Str,
    /// A number as written (`5`, `1.50`, `1e-3`, `0x41`).
    Num,
}

/// A literal of a statement, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// String or number.
    pub kind: LiteralKind,
    /// The value: a string's unescaped text, a number's text.
    pub value: String,
}

/// A statement's shape — its canonical text with every string and number literal written as
/// `?` — and its literals in source order. Two statements of one shape differ only in the
/// values of their literals. `None` when a literal is not plain (a number glued to a name,
/// a string that is not UTF-8 once unescaped).
pub fn literal_shape(sql: &str) -> Option<(String, Vec<Literal>)> {
    let b = sql.as_bytes();
    let rules = TextMode::default();
    let mut shape = String::with_capacity(sql.len());
    let mut literals = Vec::new();
    for (piece, from, to) in pieces(b, &rules) {
        match piece {
            Piece::Str { .. } => {
                let value = String::from_utf8(unquote(&b[from..to], &rules)).ok()?;
                literals.push(Literal {
                    kind: LiteralKind::Str,
                    value,
                });
                shape.push('?');
            }
            Piece::Code => {
                let code = &sql[from..to];
                let mut last = 0;
                for (s, e) in numbers(code.as_bytes())? {
                    shape.push_str(&code[last..s]);
                    shape.push('?');
                    literals.push(Literal {
                        kind: LiteralKind::Num,
                        value: code[s..e].to_string(),
                    });
                    last = e;
                }
                shape.push_str(&code[last..]);
            }
            _ => shape.push_str(&sql[from..to]),
        }
    }
    Some((shape, literals))
}

/// The number literals of a piece of code (`5`, `1.50`, `2e-3`, `0x1F`, `0b101`) as byte
/// ranges; `None` when a number runs into a name (`1abc` is a name in MySQL).
fn numbers(code: &[u8]) -> Option<Vec<(usize, usize)>> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let c = code[i];
        let starts = c.is_ascii_digit() && (i == 0 || !(word(code[i - 1]) || code[i - 1] == b'.'));
        if !starts {
            if word(c) || c == b'.' {
                // Skip the rest of a name (or a qualified name's part), digits included.
                while i < code.len() && (word(code[i]) || code[i] == b'.') {
                    if code[i] == b'.' && code.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                        // `.5`: sqlparser reads a number MySQL reads too; not a plain literal.
                        return None;
                    }
                    i += 1;
                }
            } else {
                i += 1;
            }
            continue;
        }
        let start = i;
        let radix = |p: u8| code.get(i + 1) == Some(&p) && code[i] == b'0';
        if radix(b'x') || radix(b'b') {
            i += 2;
            while i < code.len() && code[i].is_ascii_hexdigit() {
                i += 1;
            }
        } else {
            while i < code.len() && code[i].is_ascii_digit() {
                i += 1;
            }
            if code.get(i) == Some(&b'.') {
                i += 1;
                while i < code.len() && code[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if matches!(code.get(i), Some(b'e' | b'E'))
                && code
                    .get(i + 1)
                    .is_some_and(|d| d.is_ascii_digit() || matches!(d, b'+' | b'-'))
            {
                i += 2;
                while i < code.len() && code[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
        if code.get(i).is_some_and(|&c| word(c) || c == b'.') {
            return None;
        }
        out.push((start, i));
    }
    Some(out)
}

/// How a `0x…` number literal shows in a hex value of sqlparser's AST (see
/// [`sqlparser_text`]).
pub const HEX_NUMBER_PREFIX: &str = "0x";

/// The `0x…` number literals of a piece of code, as byte ranges.
fn hex_numbers(code: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 2 < code.len() + 1 {
            let start = i;
            if code[i] == b'0'
                && code.get(i + 1) == Some(&b'x')
                && (i == 0 || !(word(code[i - 1]) || code[i - 1] == b'.'))
            {
                let mut j = i + 2;
                while j < code.len() && code[j].is_ascii_hexdigit() {
                    j += 1;
                }
                if j > i + 2 && code.get(j).is_none_or(|&c| !word(c)) {
                    i = j;
                    return Some((start, j));
                }
            }
            i += 1;
        }
        None
    })
}

/// Whether canonical text holds exactly one statement (no `;` outside quotes and comments but
/// a trailing one): a guard before text is sent to a shard.
pub fn is_single_statement(sql: &str) -> bool {
    let b = sql.as_bytes();
    let rules = TextMode::default();
    let mut seen_end = false;
    for (piece, from, to) in pieces(b, &rules) {
        match piece {
            Piece::Code => {
                for &c in &b[from..to] {
                    if seen_end && !c.is_ascii_whitespace() {
                        return false;
                    }
                    if c == b';' {
                        seen_end = true;
                    }
                }
            }
            Piece::Comment => {}
            _ if seen_end => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_variable_names_are_renamed_as_words_only() {
        let names = [("transaction_isolation", "tx_isolation")];
        let r = |sql: &str| replace_system_variables(sql, &names).into_owned();
        assert_eq!(r("SELECT @@transaction_isolation"), "SELECT @@tx_isolation");
        assert_eq!(
            r("SET SESSION TRANSACTION_ISOLATION = 'READ-COMMITTED'"),
            "SET SESSION tx_isolation = 'READ-COMMITTED'"
        );
        assert_eq!(
            r("SELECT @@session.transaction_isolation"),
            "SELECT @@session.tx_isolation"
        );
        for kept in [
            "SET @transaction_isolation = 1",
            "SET @my_transaction_isolation = 1",
            "SET @v = 'transaction_isolation'",
            "SELECT `transaction_isolation` FROM t",
            "SELECT transaction_isolation_x",
        ] {
            assert_eq!(r(kept), kept);
        }
    }

    fn nbe() -> TextMode {
        TextMode::new("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", "utf8mb4")
    }

    #[test]
    fn default_utf8_text_is_borrowed() {
        let m = TextMode::default();
        assert!(matches!(
            canonical(b"SELECT 'a\\\\'", &m),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            for_session("SELECT 'a\\\\'", &m),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn mysql_escapes_are_read_as_mysql_reads_them() {
        let m = TextMode::default();
        assert_eq!(unquote(br"'a\\b'", &m), br"a\b");
        assert_eq!(unquote(br"'\a\f\%\_\Z\0'", &m), b"af\\%\\_\x1a\0");
        assert_eq!(unquote(b"'it''s'", &m), b"it's");
        assert_eq!(unquote(br"'it\'", &nbe()), br"it\");
    }

    #[test]
    fn a_value_ending_in_a_backslash_survives_both_modes() {
        // Under NO_BACKSLASH_ESCAPES the client writes 'a\' for the value a\.
        let c = canonical(br"INSERT INTO t VALUES ('a\', 'x')", &nbe()).expect("text");
        assert_eq!(c, r"INSERT INTO t VALUES ('a\\', 'x')");
        assert_eq!(for_session(&c, &nbe()), r"INSERT INTO t VALUES ('a\', 'x')");
    }

    #[test]
    fn ansi_quotes_make_identifiers() {
        let m = TextMode::new("ANSI", "utf8mb4");
        let c = canonical(br#"SELECT "a""b" FROM t WHERE x = 'y'"#, &m).expect("text");
        assert_eq!(c, "SELECT `a\"b` FROM t WHERE x = 'y'");
        assert_eq!(for_session(r#"SELECT "s" FROM t"#, &m), "SELECT 's' FROM t");
    }

    #[test]
    fn binary_literals_become_hex_with_their_introducer() {
        let m = TextMode::default();
        let c = canonical(b"INSERT INTO t VALUES (_binary'\xff\\\\\x00', 'ok')", &m).expect("text");
        assert_eq!(c, "INSERT INTO t VALUES (_binary X'FF5C00', 'ok')");
        let c = canonical(b"SELECT '\xff'", &m).expect("text");
        assert_eq!(c, "SELECT _binary X'FF'");
        assert!(canonical(b"SELECT \xff FROM t", &m).is_err());
    }

    #[test]
    fn gbk_trail_bytes_are_not_escapes() {
        let m = TextMode::new("", "gbk");
        // 0xBF 0x5C is one GBK character; the quote after it closes the string.
        let c = canonical(b"SELECT '\xbf\x5c', 'b'", &m).expect("text");
        assert_eq!(c, "SELECT _gbk X'BF5C', 'b'");
        // Non-ASCII produced inside myshard leaves as utf8mb4 bytes.
        assert_eq!(for_session("SELECT 'é'", &m), "SELECT _utf8mb4 X'C3A9'");
        assert_eq!(for_session("SELECT 'e'", &m), "SELECT 'e'");
    }

    #[test]
    fn sjis_and_big5_trail_bytes_are_not_escapes() {
        for (cs, lead) in [
            ("sjis", 0x95),
            ("cp932", 0x95),
            ("big5", 0xA4),
            ("gb18030", 0x81),
        ] {
            let m = TextMode::new("", cs);
            let sql = [&b"SELECT '"[..], &[lead, 0x5C], b"', 1"].concat();
            let c = canonical(&sql, &m).expect("text");
            assert_eq!(c, format!("SELECT _{cs} X'{lead:02X}5C', 1"), "{cs}");
        }
    }

    #[test]
    fn sqlparser_sees_mysql_values() {
        assert_eq!(sqlparser_text(r"SELECT 'a\fb'"), "SELECT 'afb'");
        assert_eq!(sqlparser_text(r"SELECT 'a\\', '\''"), r"SELECT 'a\\', ''''");
        assert_eq!(sqlparser_text("SELECT 'plain'"), "SELECT 'plain'");
        assert_eq!(
            sqlparser_text("SELECT 0x41, t0x41, 0xZZ, '0x41', a.0x1"),
            "SELECT X'0x41', t0x41, 0xZZ, '0x41', a.0x1"
        );
    }

    #[test]
    fn quoting_is_exact() {
        assert_eq!(quote(b"it's \\", "_binary"), r"'it''s \\'");
        assert_eq!(quote(b"a\0\x1a", "_binary"), r"'a\0\Z'");
        assert_eq!(quote(b"\xff\\", "_binary"), "_binary X'FF5C'");
        assert_eq!(quote_portable(b"a\\b", "_utf8mb4"), "_utf8mb4 X'615C62'");
        assert_eq!(quote_portable(b"it's", "_utf8mb4"), "'it''s'");
        assert_eq!(quote_ident("a`b"), "`a``b`");
        for v in [&b"it's"[..], b"a\\b", b"\xff\x00", b""] {
            assert_eq!(
                literal_value(&quote_portable(v, "_binary")).as_deref(),
                Some(v)
            );
            assert_eq!(literal_value(&quote(v, "_binary")).as_deref(), Some(v));
        }
        let gbk = TextMode::new("", "gbk");
        assert_eq!(quote_in(b"\xbf\x5c", &gbk), "_gbk X'BF5C'");
        assert_eq!(quote_in(b"a'b", &gbk), "'a''b'");
    }

    #[test]
    fn replacements_leave_literals_alone() {
        assert_eq!(
            replace_names(
                "SET NAMES x COLLATE a_0900, @c = 'a_0900', @v = 'my a_0900'",
                &[("a_0900", "b")]
            ),
            "SET NAMES x COLLATE b, @c = 'b', @v = 'my a_0900'"
        );
    }

    #[test]
    fn shapes_put_parameters_where_literals_are() {
        let (shape, lits) =
            literal_shape("SELECT a1, 'x''y' FROM t2 WHERE id = 5 AND f = -1.5e3 AND h = 0x1F")
                .expect("plain");
        assert_eq!(
            shape,
            "SELECT a1, ? FROM t2 WHERE id = ? AND f = -? AND h = ?"
        );
        let values: Vec<&str> = lits.iter().map(|l| l.value.as_str()).collect();
        assert_eq!(values, ["x'y", "5", "1.5e3", "0x1F"]);
        assert!(literal_shape("SELECT 1abc FROM t").is_none());
        assert!(literal_shape("SELECT .5").is_none());
        assert_eq!(
            literal_shape("SELECT t.c1 FROM db1.t").map(|s| s.1.len()),
            Some(0)
        );
    }

    #[test]
    fn one_statement_guard() {
        assert!(is_single_statement("SELECT ';' FROM t;"));
        assert!(is_single_statement("SELECT 1 -- ; x"));
        assert!(is_single_statement("SELECT 'a\\\\'"));
        assert!(!is_single_statement("SELECT 1; SELECT 2"));
    }
}
