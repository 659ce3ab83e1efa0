//! The restore an incident names, as one shell line: every word quoted so that bash, zsh and
//! ksh read back exactly the name given, and no byte that could steer a terminal printed as it
//! is.

/// separators and bidirectional overrides.
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` as one shell word: bare when it holds only `[A-Za-z0-9_./:@-]`, else in single
/// quotes (`'\''` for a quote), or, when it holds a character that must not reach a terminal,
/// as `$'...'` with that character's bytes as `\xHH` (bash, zsh and ksh read it back exactly).
pub fn shell_quote(text: &str) -> String {
    let bare =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | ':' | '@' | '-');
    if !text.is_empty() && text.chars().all(bare) {
        return text.to_string();
    }
    if !text.chars().any(unprintable) {
        return format!("'{}'", text.replace('\'', "'\\''"));
    }
    let mut quoted = String::from("$'");
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            c if unprintable(c) => {
                let mut bytes = [0; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    quoted.push_str(&format!("\\x{byte:02x}"));
                }
            }
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// `--name value`, or `--name=value` for a value that would read as an option.
fn option(name: &str, value: &str) -> String {
    match value.starts_with('-') {
        true => format!("--{name}={}", shell_quote(value)),
        false => format!("--{name} {}", shell_quote(value)),
    }
}

/// The restore of `tables` as they were at `time` (RFC 3339), into the schema `recovered`
/// beside the live ones, as one shell line.
pub fn restore_command_as_of(
    store: &str,
    database_id: &str,
    tables: &[String],
    time: time::OffsetDateTime,
) -> String {
    let time = time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        "backstop restore {} {} {} --to-time {time} --into-schema recovered --db \"$DATABASE_URL\"",
        option("from", store),
        option("database-id", database_id),
        option("tables", &tables.join(",")),
    )
}

/// The restore of `tables` as they were just before transaction `before_xid`, into the schema
/// `recovered` beside the live ones, as one shell line.
pub fn restore_command(
    store: &str,
    database_id: &str,
    tables: &[String],
    before_xid: u64,
) -> String {
    format!(
        "backstop restore {} {} {} --before-xid {before_xid} --into-schema recovered --db \"$DATABASE_URL\"",
        option("from", store),
        option("database-id", database_id),
        option("tables", &tables.join(",")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_quoted_for_the_shell_and_escaped_for_the_terminal() {
        assert_eq!(shell_quote("public.orders"), "public.orders");
        assert_eq!(shell_quote("file:///var/b@k-1"), "file:///var/b@k-1");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a'b; rm -rf /"), "'a'\\''b; rm -rf /'");
        assert_eq!(shell_quote("app.\"Users\""), "'app.\"Users\"'");
        assert_eq!(shell_quote("$(reboot)`x`"), "'$(reboot)`x`'");
        assert_eq!(
            shell_quote("a\nb\u{1b}[2Jc'd\\"),
            "$'a\\x0ab\\x1b[2Jc\\'d\\\\'"
        );
        assert_eq!(shell_quote("x\u{202e}y"), "$'x\\xe2\\x80\\xaey'");

        let table = "public.\"a'b; rm -rf /\u{1b}]0;x\u{7}\"".to_string();
        let command = restore_command("s3://b/p q", "-app", std::slice::from_ref(&table), 77);
        assert_eq!(
            command,
            "backstop restore --from 's3://b/p q' --database-id=-app --tables \
             $'public.\"a\\'b; rm -rf /\\x1b]0;x\\x07\"' --before-xid 77 --into-schema recovered \
             --db \"$DATABASE_URL\""
        );
        assert!(!command.chars().any(unprintable));

        // The shell reads each word back exactly as it was.
        if let Ok(output) = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "printf '%s\\0' {} {} {}",
                shell_quote(&table),
                shell_quote("a'b; rm -rf /"),
                shell_quote("tab\there\u{85}")
            ))
            .output()
        {
            let words: Vec<&[u8]> = output.stdout.split(|b| *b == 0).collect();
            assert_eq!(words[0], table.as_bytes());
            assert_eq!(words[1], b"a'b; rm -rf /");
            assert_eq!(words[2], "tab\there\u{85}".as_bytes());
        }
    }
}
