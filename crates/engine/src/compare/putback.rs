//! The put-back SQL: comments that say what was found, then one transaction that inserts the
//! missing rows and updates the changed ones from the recovered table, comparing again when it
//! runs. It deletes nothing.

use super::Comparison;
use super::plan::{MatchedOn, shown_list, shown_name};
use crate::catalog::ident;
use crate::script::inert;

/// How long the put-back SQL waits for a lock on the live table before it fails (it can be run
/// again: it does only what is still needed when it runs).
const PUTBACK_LOCK_WAIT: &str = "30s";

/// Names as SQL, comma-separated, each behind `alias.` when one is given.
fn column_list(alias: Option<&str>, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| match alias {
            Some(alias) => format!("{alias}.{}", ident(c)),
            None => ident(c),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn rows(n: u64) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

impl Comparison {
    /// The SQL that puts the missing rows back and the changed ones to their recovered values,
    /// in one transaction, reading the recovered table when it runs: an INSERT of the rows the
    /// live table lacks and (matched on a key) an UPDATE of those that differ. Each finds its
    /// rows when it runs, so it puts back what is missing or changed then.
    pub fn putback_sql(&self) -> String {
        let plan = &self.plan;
        let live = plan.live.shown();
        let recovered = plan.recovered.shown();
        let changed = self.changed.as_ref().map_or(0, |c| c.rows);
        let mut lines = vec![
            format!(
                "Puts rows of {live} back from {recovered}, as `backstop compare` found them at {}.",
                self.checked_at
            ),
            "Review it, then run it: psql -v ON_ERROR_STOP=1 -f FILE (one transaction: all or nothing).".into(),
            String::new(),
            "When compared:".into(),
        ];
        if !self.has_putback() {
            lines.push(format!(
                "  {live} held every row of {recovered} as it is: the statements below change nothing unless that changed since;"
            ));
        }
        if self.missing.rows > 0 {
            lines.push(format!(
                "  {} of {recovered} missing from {live}: the INSERT below adds them back;",
                rows(self.missing.rows)
            ));
        }
        if changed > 0 {
            lines.push(format!(
                "  {} changed (same key, some column differs): the UPDATE below sets them back to the values in {recovered};",
                rows(changed)
            ));
        }
        lines.push(format!(
            "  {} in {live} and not in {recovered}: left as {} (nothing is deleted).",
            rows(self.extra.rows),
            if self.extra.rows == 1 {
                "it is"
            } else {
                "they are"
            }
        ));
        lines.push(format!("Rows are matched on {}.", plan.matched_on_text()));
        if plan.matched_on == MatchedOn::WholeRow {
            lines.push(format!(
                "Rows are matched as sets: a row {recovered} holds twice and {live} once is not missing."
            ));
        }
        lines.push(format!(
            "Columns compared: {}.",
            shown_list(&plan.compared_columns)
        ));
        for (name, why) in &plan.not_updated {
            lines.push(format!(
                "Not set by the UPDATE: {} ({why}).",
                shown_name(name)
            ));
        }
        if !plan.live_only.is_empty() {
            lines.push(format!(
                "Only in {live} (inserted rows get their defaults): {}.",
                shown_list(&plan.live_only)
            ));
        }
        if !plan.recovered_only.is_empty() {
            lines.push(format!(
                "Only in {recovered} (not put back): {}.",
                shown_list(&plan.recovered_only)
            ));
        }
        for (name, live_type, recovered_type) in &plan.retyped {
            lines.push(format!(
                "{} is {} in {live} and {} in {recovered}: compared as text, assigned with the type's cast.",
                shown_name(name),
                inert(live_type),
                inert(recovered_type)
            ));
        }
        if plan.overriding {
            lines.push(
                "Inserted rows keep their identity values (OVERRIDING SYSTEM VALUE); the identity sequence is not moved."
                    .into(),
            );
        }
        lines.extend([
            format!("The triggers of {live} fire for every row inserted and updated, and its constraints are checked."),
            format!(
                "It reads {recovered} when it runs: that table must still exist then, and no row value is in this file."
            ),
            "Each statement compares again when it runs: it puts back what is missing or changed then, which may differ from the counts above."
                .into(),
        ]);
        let mut sql: String = lines
            .iter()
            .map(|line| {
                if line.is_empty() {
                    "--\n".to_string()
                } else {
                    format!("-- {line}\n")
                }
            })
            .collect();
        sql.push_str(&format!(
            "\nBEGIN;\nSET LOCAL lock_timeout = '{PUTBACK_LOCK_WAIT}';\n"
        ));
        if !plan.updated.is_empty() {
            let set = plan
                .updated
                .iter()
                .map(|c| format!("{} = r.{}", ident(c), ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(
                "\nUPDATE {} AS l SET {set}\n  FROM {} AS r\n  WHERE {}\n    AND {};\n",
                plan.live.rows(),
                plan.recovered.rows(),
                plan.key_match(),
                plan.differ()
            ));
        }
        {
            let overriding = if plan.overriding {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            };
            sql.push_str(&format!(
                "\nINSERT INTO {} ({}){overriding}\n  SELECT {}\n  FROM {} AS r\n  WHERE NOT EXISTS (SELECT 1 FROM {} AS l WHERE {});\n",
                plan.live.sql(),
                column_list(None, &plan.inserted),
                column_list(Some("r"), &plan.inserted),
                plan.recovered.rows(),
                plan.live.rows(),
                plan.key_match()
            ));
        }
        sql.push_str("\nCOMMIT;\n");
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{column, compared, orders, table};
    use super::super::plan::{KeyIndex, Table, plan};
    use crate::script::meta_command;

    #[test]
    fn the_putback_inserts_and_updates_from_the_recovered_table_and_deletes_nothing() {
        let (live, recovered, keys) = orders();
        let plan = plan(live, recovered, &keys).unwrap();
        let sql = compared(plan, 2, Some(3), 1).putback_sql();
        assert!(sql.contains("-- Puts rows of app.orders back from recovered.orders, as `backstop compare` found them at 2026-01-02T03:04:05Z."), "{sql}");
        assert!(
            sql.contains("--   2 rows of recovered.orders missing from app.orders"),
            "{sql}"
        );
        assert!(sql.contains("--   3 rows changed"), "{sql}");
        assert!(sql.contains("--   1 row in app.orders and not in recovered.orders: left as it is (nothing is deleted)."), "{sql}");
        assert!(sql.contains("-- The triggers of app.orders fire"), "{sql}");
        assert!(
            sql.contains(
                "-- It reads recovered.orders when it runs: that table must still exist then"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("-- Not set by the UPDATE: doubled (generated)."),
            "{sql}"
        );
        let statements = sql
            .lines()
            .filter(|l| !l.starts_with("--") && !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            statements,
            "BEGIN;\n\
             SET LOCAL lock_timeout = '30s';\n\
             UPDATE ONLY app.orders AS l SET total = r.total, \"Data\" = r.\"Data\"\n  \
               FROM ONLY recovered.orders AS r\n  \
               WHERE l.id = r.id\n    \
               AND (l.total::text IS DISTINCT FROM r.total::text OR l.\"Data\"::text IS DISTINCT FROM r.\"Data\"::text);\n\
             INSERT INTO app.orders (id, total, \"Data\") OVERRIDING SYSTEM VALUE\n  \
               SELECT r.id, r.total, r.\"Data\"\n  \
               FROM ONLY recovered.orders AS r\n  \
               WHERE NOT EXISTS (SELECT 1 FROM ONLY app.orders AS l WHERE l.id = r.id);\n\
             COMMIT;"
        );
        assert!(!sql.to_uppercase().contains("DELETE "), "{sql}");
        assert_eq!(meta_command(&sql), None);
    }

    #[test]
    fn the_comments_say_what_was_found_and_the_statements_always_compare_again() {
        let (live, recovered, keys) = orders();
        let plan = plan(live, recovered, &keys).unwrap();
        let only_missing = compared(plan.clone(), 1, Some(0), 0).putback_sql();
        assert!(only_missing.contains("--   1 row of recovered.orders missing from app.orders"));
        assert!(!only_missing.contains("changed (same key"));
        let nothing = compared(plan, 0, Some(0), 7).putback_sql();
        assert!(nothing.contains("--   app.orders held every row of recovered.orders as it is: the statements below change nothing unless that changed since;"), "{nothing}");
        assert!(
            nothing.contains("--   7 rows in app.orders and not in recovered.orders"),
            "{nothing}"
        );
        // The statements find their rows when they run: rows lost since are put back too.
        assert!(
            nothing.contains("INSERT INTO") && nothing.contains("UPDATE "),
            "{nothing}"
        );
    }

    #[test]
    fn names_from_the_database_stay_quoted_in_sql_and_inert_in_comments() {
        let evil = "x\n\\! rm -rf ~\n";
        let live = table(1, "app", evil, vec![column("id"), column(evil)]);
        let recovered = table(2, "recovered", evil, vec![column("id"), column(evil)]);
        let keys = [KeyIndex {
            name: evil.into(),
            primary: true,
            columns: vec!["id".into()],
        }];
        let partitioned = Table {
            partitioned: true,
            ..live
        };
        let plan = plan(partitioned, recovered, &keys).unwrap();
        let sql = compared(plan, 1, Some(1), 0).putback_sql();
        assert_eq!(meta_command(&sql), None, "{sql}");
        let head = sql.split("\nBEGIN;").next().unwrap();
        for line in head.lines() {
            assert!(line.is_empty() || line.starts_with("--"), "{line}");
        }
        assert!(
            sql.contains("UPDATE app.\"x\n\\! rm -rf ~\n\" AS l"),
            "{sql}"
        );
        assert!(sql.contains("-- Puts rows of app.\"x\\u{a}\\! rm"), "{sql}");
        let quoted = table(3, "public", "Order Lines", Vec::new());
        assert_eq!(quoted.shown(), "public.\"Order Lines\"");
        assert_eq!(quoted.sql(), "\"public\".\"Order Lines\"");
    }
}
