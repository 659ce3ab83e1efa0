//! The SQL the comparison runs: how a live row and a recovered row are matched, and the
//! queries that count the missing, extra, changed and repeated rows with a few example keys.

use super::plan::{MatchedOn, Plan, shown_list, shown_name};
use super::{EXAMPLE_CHARS, EXAMPLES};
use crate::catalog::ident;

/// `alias.column::text`.
fn as_text(alias: &str, column: &str) -> String {
    format!("{alias}.{}::text", ident(column))
}

impl Plan {
    /// Key column `i` of `alias`'s row, as matched: itself, or as text where the two tables'
    /// types differ.
    fn key_expression(&self, alias: &str, i: usize) -> String {
        let column = &self.key_columns[i];
        if self.key_as_text.get(i).copied().unwrap_or(true) {
            as_text(alias, column)
        } else {
            format!("{alias}.{}", ident(column))
        }
    }

    /// The condition that a live row `l` and a recovered row `r` are the same row. Whole rows
    /// are matched NULL-safely, each column as text: `ARRAY[l.a::text, …] = ARRAY[r.a::text, …]`
    /// holds exactly when every `l.a::text IS NOT DISTINCT FROM r.a::text` does (array equality
    /// takes two NULL elements as equal), and unlike IS NOT DISTINCT FROM it can be hashed, so
    /// the anti-join is one hash join rather than a nested loop over both tables.
    pub fn key_match(&self) -> String {
        match self.matched_on {
            MatchedOn::WholeRow => {
                let side = |alias: &str| {
                    self.key_columns
                        .iter()
                        .map(|c| as_text(alias, c))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!("ARRAY[{}] = ARRAY[{}]", side("l"), side("r"))
            }
            _ => (0..self.key_columns.len())
                .map(|i| {
                    format!(
                        "{} = {}",
                        self.key_expression("l", i),
                        self.key_expression("r", i)
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        }
    }

    /// The condition that `l` and `r` differ in a column the UPDATE sets.
    pub(super) fn differ(&self) -> String {
        let each: Vec<String> = self
            .updated
            .iter()
            .map(|c| format!("{} IS DISTINCT FROM {}", as_text("l", c), as_text("r", c)))
            .collect();
        format!("({})", each.join(" OR "))
    }

    /// The example columns of `alias`'s row (cut short: only the start is shown) and their order.
    fn examples(&self, alias: &str) -> (String, String) {
        let shown = self
            .key_columns
            .iter()
            .map(|c| {
                format!(
                    "pg_catalog.left({}, {})",
                    as_text(alias, c),
                    EXAMPLE_CHARS + 1
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let order = match self.matched_on {
            MatchedOn::WholeRow => (2..self.key_columns.len() + 2)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => (0..self.key_columns.len())
                .map(|i| self.key_expression(alias, i))
                .collect::<Vec<_>>()
                .join(", "),
        };
        (shown, order)
    }

    /// Rows of the recovered table the live one lacks: their count (on each row) and the first
    /// few keys.
    pub fn missing_query(&self) -> String {
        let (shown, order) = self.examples("r");
        format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS r \
             WHERE NOT EXISTS (SELECT 1 FROM {} AS l WHERE {}) ORDER BY {order} LIMIT {EXAMPLES}",
            self.recovered.rows(),
            self.live.rows(),
            self.key_match()
        )
    }

    /// Rows of the live table the recovered one lacks.
    pub fn extra_query(&self) -> String {
        let (shown, order) = self.examples("l");
        format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS l \
             WHERE NOT EXISTS (SELECT 1 FROM {} AS r WHERE {}) ORDER BY {order} LIMIT {EXAMPLES}",
            self.live.rows(),
            self.recovered.rows(),
            self.key_match()
        )
    }

    /// Rows both tables have under one key whose updatable columns differ; `None` when rows
    /// are matched whole (a changed row is then one missing and one extra) or nothing can differ.
    pub fn changed_query(&self) -> Option<String> {
        if self.matched_on == MatchedOn::WholeRow || self.updated.is_empty() {
            return None;
        }
        let (shown, order) = self.examples("r");
        Some(format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS r JOIN {} AS l ON {} \
             WHERE {} ORDER BY {order} LIMIT {EXAMPLES}",
            self.recovered.rows(),
            self.live.rows(),
            self.key_match(),
            self.differ()
        ))
    }

    /// Keys the recovered table holds more than once (a copy has no unique index): their count
    /// and one of them. `None` for whole rows.
    pub fn duplicates_query(&self) -> Option<String> {
        if self.matched_on == MatchedOn::WholeRow {
            return None;
        }
        let (shown, _) = self.examples("r");
        let group = (0..self.key_columns.len())
            .map(|i| self.key_expression("r", i))
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS r GROUP BY {group} \
             HAVING pg_catalog.count(*) > 1 LIMIT 1",
            self.recovered.rows()
        ))
    }

    /// How rows are matched, for people.
    pub fn matched_on_text(&self) -> String {
        let columns = shown_list(&self.key_columns);
        let index = shown_name(self.index.as_deref().unwrap_or_default());
        match self.matched_on {
            MatchedOn::PrimaryKey => format!("the primary key {index} ({columns})"),
            MatchedOn::ReplicaIdentity => format!("the replica identity index {index} ({columns})"),
            MatchedOn::WholeRow => format!(
                "whole rows ({columns}): {} has no primary key or replica identity index, so a \
                 changed row counts as one missing and one extra, and only those two counts mean \
                 something",
                self.live.shown()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{column, compared, table};
    use super::super::plan::{Column, plan};
    use super::*;

    #[test]
    fn a_table_without_a_key_is_compared_by_whole_rows_null_safely() {
        let live = table(
            1,
            "app",
            "log",
            vec![
                column("at"),
                Column {
                    generated: true,
                    ..column("day")
                },
                column("what"),
            ],
        );
        let recovered = table(
            2,
            "recovered",
            "log",
            vec![column("at"), column("day"), column("what")],
        );
        let plan = plan(live, recovered, &[]).unwrap();
        assert_eq!(plan.matched_on, MatchedOn::WholeRow);
        assert_eq!(plan.key_columns, ["at", "day", "what"]);
        assert_eq!(
            plan.key_match(),
            "ARRAY[l.at::text, l.day::text, l.what::text] = ARRAY[r.at::text, r.day::text, r.what::text]"
        );
        assert_eq!(plan.changed_query(), None);
        assert_eq!(plan.duplicates_query(), None);
        assert!(!plan.overriding && plan.updated.is_empty());
        assert!(plan.missing_query().contains("ORDER BY 2, 3, 4 LIMIT 5"));
        let sql = compared(plan, 2, None, 2).putback_sql();
        assert!(sql.contains("-- Rows are matched on whole rows (at, day, what): app.log has no primary key or replica identity index, so a changed row counts as one missing and one extra"), "{sql}");
        assert!(
            sql.contains(
                "INSERT INTO app.log (at, what)\n  SELECT r.at, r.what\n  FROM ONLY recovered.log AS r\n  \
                 WHERE NOT EXISTS (SELECT 1 FROM ONLY app.log AS l WHERE ARRAY[l.at::text, l.day::text, l.what::text] = ARRAY[r.at::text, r.day::text, r.what::text]);"
            ),
            "{sql}"
        );
        assert!(!sql.contains("UPDATE "), "{sql}");
    }
}
