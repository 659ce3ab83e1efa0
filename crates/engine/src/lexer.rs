//! Statements of SQL text told apart: where a semicolon ends a statement and where text is
//! quoted, dollar-quoted or a comment. Used to refuse psql meta-commands in what `export`
//! writes ([`super::script::meta_command`]) and to read sets written before their items
//! carried marks ([`super::legacy`]), and to find where the tables a restore moves into
//! another schema are named as SQL (`restore::SchemaMove`); never for any other edit of what a
//! current set holds.

/// One statement of a script: its text (with the `;`) and the same text with every quoted
/// string, quoted identifier, dollar-quoted body and comment blanked out, so that keywords
/// are only ever found where they are SQL.
pub(crate) struct Statement<'a> {
    pub text: &'a str,
    /// Byte for byte as long as `text` (anything not ASCII outside quotes is `_`).
    pub masked: String,
}

/// Splits `sql` into statements at the semicolons that are SQL, not text.
pub(crate) fn statements(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut masked = String::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let word_before = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let (end, comment) = match c {
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'E' | b'e');
                (quoted_end(bytes, i, b'\'', escapes), false)
            }
            b'"' => (quoted_end(bytes, i, b'"', false), false),
            b'-' if next == Some(b'-') => {
                (sql[i..].find('\n').map_or(bytes.len(), |n| i + n), true)
            }
            b'/' if next == Some(b'*') => (block_comment_end(bytes, i), true),
            b'$' if !word_before => (dollar_quote_end(sql, i).unwrap_or(i + 1), false),
            _ => (i + 1, false),
        };
        if comment {
            masked.extend(std::iter::repeat_n(' ', end - i));
        } else if end == i + 1 {
            masked.push(if c.is_ascii() { c as char } else { '_' });
        } else {
            masked.push(c as char);
            masked.extend(std::iter::repeat_n('_', end - i - 1));
        }
        i = end;
        if c == b';' {
            out.push(Statement {
                text: &sql[start..i],
                masked: std::mem::take(&mut masked),
            });
            start = i;
        }
    }
    if start < sql.len() {
        out.push(Statement {
            text: &sql[start..],
            masked,
        });
    }
    out
}

/// The index after the quote that closes the one at `open` (a doubled quote is text).
pub(crate) fn quoted_end(bytes: &[u8], open: usize, quote: u8, escapes: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The index after the `*/` that closes the (nestable) comment opened at `open`.
fn block_comment_end(bytes: &[u8], open: usize) -> usize {
    let (mut depth, mut i) = (0usize, open);
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// For `$tag$` at `open`, the index after the matching closing tag; `None` when `$` does
/// not open a dollar quote (a parameter such as `$1`).
fn dollar_quote_end(sql: &str, open: usize) -> Option<usize> {
    let rest = &sql[open + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    let is_tag = tag
        .chars()
        .enumerate()
        .all(|(n, ch)| ch == '_' || ch.is_alphabetic() || (n > 0 && ch.is_ascii_digit()));
    if !is_tag {
        return None;
    }
    let delimiter = &sql[open..open + tag_len + 2];
    let body = open + delimiter.len();
    Some(
        sql[body..]
            .find(delimiter)
            .map_or(sql.len(), |n| body + n + delimiter.len()),
    )
}
