//! Role names in the DDL a backup holds, rewritten for `restore --role-map OLD=NEW`.
//!
//! A role appears where Backstop's items put one, and only there: `ALTER ... OWNER TO r`,
//! the grantee of `GRANT ... TO r` and `REVOKE ... FROM r`, `ALTER DEFAULT PRIVILEGES FOR
//! ROLE r`, the `TO r1, r2` list of `CREATE POLICY`, the user of `CREATE USER MAPPING FOR r`
//! and the grantor a grant is made as (`SET SESSION AUTHORIZATION r`). Strings, quoted bodies and comments
//! are never touched (the statement is read through its masked form).

use super::catalog::ident;
use super::script::{quoted_end, statements};

/// `sql` with every role name that `map` renames replaced by the new name.
pub fn map_roles(sql: &str, map: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(sql.len());
    for statement in statements(sql) {
        let starts = role_positions(&statement.masked);
        if starts.is_empty() {
            out.push_str(statement.text);
            continue;
        }
        let mut spans = Vec::new();
        for start in starts {
            spans.extend(role_list(statement.text, start));
        }
        spans.sort();
        let mut at = 0;
        for (from, to, name) in spans {
            if from < at {
                continue;
            }
            if let Some(new) = map(&name) {
                out.push_str(&statement.text[at..from]);
                out.push_str(&ident(&new));
                at = to;
            }
        }
        out.push_str(&statement.text[at..]);
    }
    out
}

/// Where role lists start in a statement, found in its masked text.
fn role_positions(masked: &str) -> Vec<usize> {
    let head = masked.trim_start();
    let offset = masked.len() - head.len();
    let after = |found: Option<usize>, word: &str| found.map(|at| offset + at + word.len());
    let mut starts = Vec::new();
    if head.starts_with("ALTER DEFAULT PRIVILEGES ") {
        starts.extend(after(head.find(" FOR ROLE "), " FOR ROLE "));
    }
    // The privilege statement: the whole one, or what follows FOR ROLE ... [IN SCHEMA ...].
    let action = if head.starts_with("ALTER DEFAULT PRIVILEGES ") {
        [" GRANT ", " REVOKE "]
            .iter()
            .filter_map(|word| head.find(word))
            .min()
            .map_or("", |at| head[at..].trim_start())
    } else {
        head
    };
    if action.starts_with("GRANT ") {
        starts.extend(after(head.rfind(" TO "), " TO "));
    } else if action.starts_with("REVOKE ") {
        starts.extend(after(head.rfind(" FROM "), " FROM "));
    } else if head.starts_with("SET SESSION AUTHORIZATION ") {
        starts.push(offset + "SET SESSION AUTHORIZATION ".len());
    } else if head.starts_with("CREATE USER MAPPING FOR ") {
        starts.push(offset + "CREATE USER MAPPING FOR ".len());
    } else if head.starts_with("CREATE POLICY ") {
        starts.extend(after(head.find(" TO "), " TO "));
    } else if head.starts_with("ALTER ") {
        starts.extend(after(head.rfind(" OWNER TO "), " OWNER TO "));
    }
    starts
}

/// The role names of a comma-separated list starting at `start`: (from, to, name) each.
fn role_list(text: &str, start: usize) -> Vec<(usize, usize, String)> {
    let bytes = text.as_bytes();
    let mut names = Vec::new();
    let mut i = start;
    loop {
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        let from = i;
        let name = if bytes.get(i) == Some(&b'"') {
            i = quoted_end(bytes, i, b'"', false);
            text[from + 1..i.saturating_sub(1).max(from + 1)].replace("\"\"", "\"")
        } else {
            while bytes.get(i).is_some_and(|b| {
                b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$' || !b.is_ascii()
            }) {
                i += 1;
            }
            text[from..i].to_lowercase()
        };
        if i == from {
            break;
        }
        names.push((from, i, name));
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        if bytes.get(i) == Some(&b',') {
            i += 1;
        } else {
            break;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rename(sql: &str) -> String {
        map_roles(sql, &|name| match name {
            "old" => Some("new".into()),
            "Old Admin" => Some("admin".into()),
            "anon" => Some("web anon".into()),
            _ => None,
        })
    }

    #[test]
    fn owners_grantees_and_policy_roles_are_renamed() {
        assert_eq!(
            rename("ALTER TABLE app.t OWNER TO old;\n"),
            "ALTER TABLE app.t OWNER TO new;\n"
        );
        assert_eq!(
            rename("CREATE USER MAPPING FOR old SERVER s OPTIONS (\n    user 'old'\n);\n"),
            "CREATE USER MAPPING FOR new SERVER s OPTIONS (\n    user 'old'\n);\n"
        );
        assert_eq!(
            rename(
                "SET SESSION AUTHORIZATION old;\nGRANT SELECT ON TABLE t TO anon;\nRESET SESSION AUTHORIZATION;\n"
            ),
            "SET SESSION AUTHORIZATION new;\nGRANT SELECT ON TABLE t TO \"web anon\";\nRESET SESSION AUTHORIZATION;\n"
        );
        assert_eq!(
            rename("ALTER SCHEMA app OWNER TO \"Old Admin\";\n"),
            "ALTER SCHEMA app OWNER TO admin;\n"
        );
        assert_eq!(
            rename("GRANT SELECT,INSERT ON TABLE app.\"to\" TO old WITH GRANT OPTION;\n"),
            "GRANT SELECT,INSERT ON TABLE app.\"to\" TO new WITH GRANT OPTION;\n"
        );
        assert_eq!(
            rename(
                "REVOKE ALL ON FUNCTION app.f() FROM old;\nREVOKE ALL ON FUNCTION app.f() FROM PUBLIC;\n"
            ),
            "REVOKE ALL ON FUNCTION app.f() FROM new;\nREVOKE ALL ON FUNCTION app.f() FROM PUBLIC;\n"
        );
        assert_eq!(
            rename(
                "ALTER DEFAULT PRIVILEGES FOR ROLE old IN SCHEMA app GRANT SELECT ON TABLES TO anon;\n"
            ),
            "ALTER DEFAULT PRIVILEGES FOR ROLE new IN SCHEMA app GRANT SELECT ON TABLES TO \"web anon\";\n"
        );
        assert_eq!(
            rename("ALTER DEFAULT PRIVILEGES FOR ROLE old REVOKE ALL ON FUNCTIONS FROM PUBLIC;\n"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE new REVOKE ALL ON FUNCTIONS FROM PUBLIC;\n"
        );
        assert_eq!(
            rename(
                "CREATE POLICY p ON app.t AS PERMISSIVE FOR ALL TO anon, old, keep USING ((note SIMILAR TO 'old'));\n"
            ),
            "CREATE POLICY p ON app.t AS PERMISSIVE FOR ALL TO \"web anon\", new, keep USING ((note SIMILAR TO 'old'));\n"
        );
    }

    #[test]
    fn names_in_text_bodies_and_comments_stay() {
        let sql = "CREATE FUNCTION app.f() RETURNS void LANGUAGE sql AS $$ALTER TABLE t OWNER TO old$$;\n\
                   COMMENT ON TABLE app.t IS 'GRANT x TO old';\n\
                   CREATE TABLE app.old (old integer);\n\
                   ALTER TABLE app.old OWNER TO keep;\n";
        assert_eq!(rename(sql), sql);
    }

    #[test]
    fn text_that_is_not_ascii_keeps_its_place() {
        assert_eq!(
            rename("COMMENT ON TABLE app.t IS 'größe';\nALTER TABLE app.\"größe\" OWNER TO old;\n"),
            "COMMENT ON TABLE app.t IS 'größe';\nALTER TABLE app.\"größe\" OWNER TO new;\n"
        );
    }
}
