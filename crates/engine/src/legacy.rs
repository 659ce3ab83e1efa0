//! Sets written before format 5: their items carry no marks, so the marks a current set
//! records are found here by reading the SQL this engine wrote then (the owner changes, the
//! roles, the grantors a grant is made as, the plain keys and what a foreign key references).
//! Only a set of an older format comes through here.

use super::item::ItemKind;
use super::lexer::{Statement, quoted_end, statements};
use super::script::ScriptItem;
use super::sql::{Mark, Marked};

/// The first manifest format whose items carry their marks.
pub const MARKED_FORMAT: u32 = 5;

/// Gives the items of a set written before [`MARKED_FORMAT`] the marks and references a
/// current set records.
pub fn mark(items: &mut [ScriptItem]) {
    for item in items {
        item.header.marks = marks(item.header.kind, item.header.table.as_deref(), &item.sql);
        if item.header.kind == ItemKind::ForeignKey {
            item.header.references = foreign_key_target(&item.sql);
        }
        item.header.slow_build = slow_build(item.header.kind, &item.sql);
    }
}

/// Whether an index or constraint item builds with a slow access method, as its SQL says.
pub fn slow_build(kind: ItemKind, sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    matches!(kind, ItemKind::Index | ItemKind::Constraint)
        && ["using gin", "using gist", "using spgist"]
            .iter()
            .any(|m| sql.contains(m))
}

/// The marks of an item of `kind` on `table` whose SQL is `sql`.
pub fn marks(kind: ItemKind, table: Option<&str>, sql: &str) -> Vec<Mark> {
    let mut marks = Vec::new();
    let mut offset = 0;
    for (n, statement) in statements(sql).into_iter().enumerate() {
        // Comments are blanks in the masked text: the statement starts at its first word.
        let lead = statement.masked.len() - statement.masked.trim_start().len();
        let text = statement.text[lead..].trim_end();
        let at = offset + lead;
        let head = statement.masked.trim_start();
        let whole = |is| Mark {
            at,
            len: text.len(),
            is,
        };
        if is_owner_change(&statement) {
            marks.push(whole(Marked::OwnerChange));
        } else if head.starts_with("SET SESSION AUTHORIZATION ")
            || head.starts_with("RESET SESSION AUTHORIZATION")
        {
            marks.push(whole(Marked::ActingAs));
        } else if n == 0
            && kind == ItemKind::Constraint
            && let Some(key) = table.and_then(|t| plain_key(t, text))
        {
            marks.push(whole(key));
        }
        for start in role_positions(&statement.masked) {
            for (from, to, name) in role_list(statement.text, start) {
                if &statement.text[from..to] != "PUBLIC" {
                    marks.push(Mark {
                        at: offset + from,
                        len: to - from,
                        is: Marked::Role { name },
                    });
                }
            }
        }
        offset += statement.text.len();
    }
    marks.sort_by_key(|m| (m.at, std::cmp::Reverse(m.len)));
    marks
}

/// The key `statement` adds when it is a plain `ALTER TABLE ONLY {table} ADD CONSTRAINT c
/// PRIMARY KEY|UNIQUE (columns);`: nothing deferrable, no INCLUDE, WITH, NULLS NOT DISTINCT
/// or tablespace, no parentheses in the column list.
fn plain_key(table: &str, statement: &str) -> Option<Marked> {
    let tail = statement.strip_prefix(&format!("ALTER TABLE ONLY {table} ADD CONSTRAINT "))?;
    let name_len = if tail.starts_with('"') {
        quoted_end(tail.as_bytes(), 0, b'"', false)
    } else {
        tail.find(' ')?
    };
    let (name, def) = tail.split_at(name_len);
    let (primary, columns) = [(true, " PRIMARY KEY ("), (false, " UNIQUE (")]
        .iter()
        .find_map(|(primary, k)| def.strip_prefix(k).map(|cols| (*primary, cols)))?;
    let columns = columns.strip_suffix(");")?;
    if columns.contains(['(', ')']) {
        return None; // expressions in the column list
    }
    Some(Marked::AddKey {
        name: name.to_string(),
        primary,
        columns: plain_columns(columns)?,
    })
}

/// The names of `columns` when it is a list of plain column names, quoted or not (`a, "B c"`).
fn plain_columns(columns: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = columns;
    loop {
        rest = rest.trim_start();
        let name_len = if rest.starts_with('"') {
            quoted_end(rest.as_bytes(), 0, b'"', false)
        } else {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(rest.len())
        };
        if name_len == 0 {
            return None;
        }
        names.push(rest[..name_len].to_string());
        rest = rest[name_len..].trim_start();
        match rest.strip_prefix(',') {
            Some(next) => rest = next,
            None => return rest.is_empty().then_some(names),
        }
    }
}

/// The table a foreign key constraint's SQL references (`REFERENCES schema.table(...)`, the
/// name quoted as items name tables), or `None` for another constraint (a NOT VALID check).
pub fn foreign_key_target(sql: &str) -> Option<String> {
    let start = sql.find(" FOREIGN KEY ")?;
    let rest = &sql[start..];
    let rest = &rest[rest.find(" REFERENCES ")? + " REFERENCES ".len()..];
    let mut name = String::new();
    let mut quoted = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                name.push_str("\"\"");
            }
            '"' => {
                quoted = !quoted;
                name.push('"');
            }
            '(' | ' ' | ';' | '\n' if !quoted => break,
            c => name.push(c),
        }
    }
    (!name.is_empty()).then_some(name)
}

/// Whether a statement is `ALTER <object> OWNER TO <role>`.
fn is_owner_change(statement: &Statement<'_>) -> bool {
    let masked = statement.masked.trim().trim_end_matches(';').trim_end();
    let Some(at) = masked.rfind(" OWNER TO ") else {
        return false;
    };
    let role = &masked[at + " OWNER TO ".len()..];
    masked.starts_with("ALTER ") && !role.is_empty() && !role.contains(char::is_whitespace)
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
    use crate::script::{ItemHeader, split_key_constraint};
    use crate::sql::{Edits, edit, grantors};

    fn edited(sql: &str, no_owner: bool, no_acting_as: bool) -> String {
        let marks = marks(ItemKind::Table, None, sql);
        let edits = Edits {
            no_owner,
            no_acting_as,
            role: &rename,
        };
        edit(sql, &marks, &edits).unwrap().text
    }

    fn rename(name: &str) -> Option<String> {
        match name {
            "old" => Some("new".into()),
            "Old Admin" => Some("admin".into()),
            "anon" => Some("web anon".into()),
            _ => None,
        }
    }

    #[test]
    fn owners_grantees_and_policy_roles_are_renamed() {
        for (sql, expected) in [
            (
                "ALTER TABLE app.t OWNER TO old;\n",
                "ALTER TABLE app.t OWNER TO new;\n",
            ),
            (
                "CREATE USER MAPPING FOR old SERVER s OPTIONS (\n    user 'old'\n);\n",
                "CREATE USER MAPPING FOR new SERVER s OPTIONS (\n    user 'old'\n);\n",
            ),
            (
                "SET SESSION AUTHORIZATION old;\nGRANT SELECT ON TABLE t TO anon;\nRESET SESSION AUTHORIZATION;\n",
                "SET SESSION AUTHORIZATION new;\nGRANT SELECT ON TABLE t TO \"web anon\";\nRESET SESSION AUTHORIZATION;\n",
            ),
            (
                "ALTER SCHEMA app OWNER TO \"Old Admin\";\n",
                "ALTER SCHEMA app OWNER TO admin;\n",
            ),
            (
                "GRANT SELECT,INSERT ON TABLE app.\"to\" TO old WITH GRANT OPTION;\n",
                "GRANT SELECT,INSERT ON TABLE app.\"to\" TO new WITH GRANT OPTION;\n",
            ),
            (
                "REVOKE ALL ON FUNCTION app.f() FROM old;\nREVOKE ALL ON FUNCTION app.f() FROM PUBLIC;\n",
                "REVOKE ALL ON FUNCTION app.f() FROM new;\nREVOKE ALL ON FUNCTION app.f() FROM PUBLIC;\n",
            ),
            (
                "ALTER DEFAULT PRIVILEGES FOR ROLE old IN SCHEMA app GRANT SELECT ON TABLES TO anon;\n",
                "ALTER DEFAULT PRIVILEGES FOR ROLE new IN SCHEMA app GRANT SELECT ON TABLES TO \"web anon\";\n",
            ),
            (
                "ALTER DEFAULT PRIVILEGES FOR ROLE old REVOKE ALL ON FUNCTIONS FROM PUBLIC;\n",
                "ALTER DEFAULT PRIVILEGES FOR ROLE new REVOKE ALL ON FUNCTIONS FROM PUBLIC;\n",
            ),
            (
                "CREATE POLICY p ON app.t AS PERMISSIVE FOR ALL TO anon, old, keep USING ((note SIMILAR TO 'old'));\n",
                "CREATE POLICY p ON app.t AS PERMISSIVE FOR ALL TO \"web anon\", new, keep USING ((note SIMILAR TO 'old'));\n",
            ),
        ] {
            assert_eq!(edited(sql, false, false), expected);
        }
    }

    #[test]
    fn names_in_text_bodies_and_comments_stay() {
        let sql = "CREATE FUNCTION app.f() RETURNS void LANGUAGE sql AS $$ALTER TABLE t OWNER TO old$$;\n\
                   COMMENT ON TABLE app.t IS 'GRANT x TO old';\n\
                   CREATE TABLE app.old (old integer);\n\
                   ALTER TABLE app.old OWNER TO keep;\n";
        assert_eq!(edited(sql, false, false), sql);
        let sql = "COMMENT ON TABLE app.t IS 'größe';\nALTER TABLE app.\"größe\" OWNER TO old;\n";
        assert_eq!(
            edited(sql, false, false),
            "COMMENT ON TABLE app.t IS 'größe';\nALTER TABLE app.\"größe\" OWNER TO new;\n"
        );
    }

    #[test]
    fn owner_changes_are_dropped_and_nothing_else() {
        let sql = "CREATE TABLE app.\"a;b\" (note text DEFAULT 'x; ALTER TABLE t OWNER TO y;');\n\
                   ALTER TABLE app.\"a;b\" OWNER TO \"Owner Role\";\n\
                   ALTER TABLE ONLY app.t ALTER COLUMN id SET DEFAULT 1;\n\
                   CREATE FUNCTION app.f() RETURNS void AS $body$\n\
                   BEGIN\n    EXECUTE 'ALTER TABLE t OWNER TO y';\nEND;\n$body$ LANGUAGE plpgsql;\n\
                   ALTER FUNCTION app.f() OWNER TO app_owner;\n\
                   COMMENT ON TABLE app.t IS E'it''s \\' ; OWNER TO';\n\
                   ALTER SEQUENCE app.s OWNED BY app.t.id;\n\
                   SELECT $1::text; -- a parameter, not a dollar quote; OWNER TO x\n\
                   /* ALTER TABLE t OWNER TO y; /* nested */ */ ALTER SCHEMA app OWNER TO app_owner;\n";
        let kept = edited(sql, true, false);
        assert!(!kept.contains("OWNER TO \"Owner Role\""), "{kept}");
        assert!(!kept.contains("OWNER TO app_owner"), "{kept}");
        for survivor in [
            "CREATE TABLE app.\"a;b\" (note text DEFAULT 'x; ALTER TABLE t OWNER TO y;');",
            "EXECUTE 'ALTER TABLE t OWNER TO y';\nEND;\n$body$ LANGUAGE plpgsql;",
            "ALTER COLUMN id SET DEFAULT 1;",
            "IS E'it''s \\' ; OWNER TO';",
            "OWNED BY app.t.id;",
            "SELECT $1::text;",
        ] {
            assert!(kept.contains(survivor), "lost {survivor:?} from:\n{kept}");
        }
    }

    #[test]
    fn grantors_are_taken_out_for_a_role_that_cannot_act_as_them() {
        let sql = "GRANT SELECT ON TABLE t TO lead WITH GRANT OPTION;\n\
                   SET SESSION AUTHORIZATION lead;\nGRANT SELECT ON TABLE t TO analyst;\nRESET SESSION AUTHORIZATION;\n";
        assert_eq!(grantors(&marks(ItemKind::Acl, None, sql)), ["lead"]);
        let kept = edited(sql, false, true);
        assert_eq!(
            kept.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
            [
                "GRANT SELECT ON TABLE t TO lead WITH GRANT OPTION;",
                "GRANT SELECT ON TABLE t TO analyst;"
            ]
        );
        assert!(
            grantors(&marks(
                ItemKind::Acl,
                None,
                "GRANT SELECT ON TABLE t TO a;\n"
            ))
            .is_empty()
        );
    }

    #[test]
    fn a_foreign_key_names_the_table_it_references_and_a_check_none() {
        let fk = "ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer) REFERENCES public.customers(id);";
        assert_eq!(foreign_key_target(fk).as_deref(), Some("public.customers"));
        let quoted = "ALTER TABLE ONLY \"Sales\".\"Line\" ADD CONSTRAINT x FOREIGN KEY (a) REFERENCES \"Sales\".\"Or(\"\"ders\"(id) NOT VALID;";
        assert_eq!(
            foreign_key_target(quoted).as_deref(),
            Some("\"Sales\".\"Or(\"\"ders\"")
        );
        let check =
            "ALTER TABLE public.orders ADD CONSTRAINT total_ok CHECK (total >= 0) NOT VALID;";
        assert_eq!(foreign_key_target(check), None);
    }

    fn constraint(table: &str, sql: &str) -> ScriptItem {
        ScriptItem {
            header: ItemHeader {
                kind: ItemKind::Constraint,
                name: "x".into(),
                table: Some(table.into()),
                marks: marks(ItemKind::Constraint, Some(table), sql),
                references: None,
                slow_build: false,
            },
            sql: sql.into(),
        }
    }

    #[test]
    fn plain_keys_split_into_an_index_build_and_an_attach() {
        let item = constraint(
            "app.\"Order Lines\"",
            "ALTER TABLE ONLY app.\"Order Lines\" ADD CONSTRAINT \"Order Lines_pkey\" PRIMARY KEY (\"orderId\", line);\n\
             ALTER TABLE app.\"Order Lines\" CLUSTER ON \"Order Lines_pkey\";\n",
        );
        let split = split_key_constraint(&item).unwrap();
        assert_eq!(split.build.header.kind, ItemKind::Index);
        assert_eq!(
            split.build.sql,
            "CREATE UNIQUE INDEX \"Order Lines_pkey\" ON app.\"Order Lines\" USING btree (\"orderId\", line);\n"
        );
        assert_eq!(
            split.attach.sql,
            "ALTER TABLE ONLY app.\"Order Lines\" ADD CONSTRAINT \"Order Lines_pkey\" PRIMARY KEY USING INDEX \"Order Lines_pkey\";\n\
             ALTER TABLE app.\"Order Lines\" CLUSTER ON \"Order Lines_pkey\";\n"
        );
        let unique = constraint(
            "app.t",
            "ALTER TABLE ONLY app.t ADD CONSTRAINT t_code_key UNIQUE (code);\n",
        );
        assert!(
            split_key_constraint(&unique)
                .unwrap()
                .attach
                .sql
                .contains("t_code_key UNIQUE USING INDEX t_code_key;")
        );
    }

    #[test]
    fn keys_an_index_cannot_express_alone_stay_whole() {
        for def in [
            "PRIMARY KEY (id) INCLUDE (note)",
            "PRIMARY KEY (id) WITH (fillfactor='70')",
            "UNIQUE (code) DEFERRABLE INITIALLY DEFERRED",
            "UNIQUE NULLS NOT DISTINCT (code)",
            "EXCLUDE USING gist (during WITH &&)",
            "CHECK ((price > (0)::numeric))",
            "UNIQUE (\"odd)name\")",
            "PRIMARY KEY (id, valid WITHOUT OVERLAPS)",
            "UNIQUE (room, during WITHOUT OVERLAPS)",
        ] {
            let item = constraint(
                "app.t",
                &format!("ALTER TABLE ONLY app.t ADD CONSTRAINT c {def};\n"),
            );
            assert_eq!(split_key_constraint(&item), None, "{def}");
        }
    }
}
