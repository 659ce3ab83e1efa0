//! What the restore options do to a set's items, and where each post-data item runs: pure
//! functions over items and their marks.

use std::collections::{HashMap, HashSet};

use super::RestoreError;
use crate::item::ItemKind;
use crate::script::{self, ScriptItem};
use crate::sql::{self, Edits};
use backstop_store::layout::MANIFEST_NAME;

/// `items` with `--no-acl` (`no_acl`) and `edits` applied; for each item that makes grants as
/// a grantor the restoring role cannot act as, a line for the report in `grantors_lost`.
pub(super) fn apply_options(
    items: Vec<ScriptItem>,
    no_acl: bool,
    edits: &Edits<'_>,
    grantors_lost: &mut Vec<String>,
) -> Result<Vec<ScriptItem>, RestoreError> {
    let mut kept = Vec::with_capacity(items.len());
    for mut item in items {
        if no_acl && item.header.kind.is_privilege() {
            continue;
        }
        let grantors = sql::grantors(&item.header.marks);
        if edits.no_acting_as && !grantors.is_empty() {
            grantors_lost.push(format!(
                "grants on {} made by {} in the source are made by the restoring role \
                 (only a superuser restores a grant's grantor)",
                item.header.name,
                grantors.join(", ")
            ));
        }
        let edited = sql::edit(&item.sql, &item.header.marks, edits).map_err(|e| {
            RestoreError::Manifest {
                key: MANIFEST_NAME.into(),
                reason: format!("item {}: {e}", item.header.name),
            }
        })?;
        item.sql = edited.text;
        item.header.marks = edited.marks;
        kept.push(item);
    }
    Ok(kept)
}

/// Where each post-data item runs: the index and constraint builds of a loaded table (a plain
/// key split into its index build and, for after the pool, its attach) go to that table's
/// builds, ordered by [`build_priority`]; the rest run one after another after the pool, the
/// attaches first (instant, and before the foreign keys that need them).
pub(super) fn schedule_post_data(
    items: impl IntoIterator<Item = ScriptItem>,
    loaded_tables: &HashSet<String>,
    partitioning: &HashSet<String>,
) -> (HashMap<String, Vec<ScriptItem>>, Vec<ScriptItem>) {
    let mut per_table: HashMap<String, Vec<ScriptItem>> = HashMap::new();
    let mut attaches = Vec::new();
    let mut serial = Vec::new();
    for item in items {
        match &item.header.table {
            Some(t) if item.header.kind.builds_in_parallel() && loaded_tables.contains(t) => {
                let builds = per_table.entry(t.clone()).or_default();
                match script::split_key_constraint(&item).filter(|_| !partitioning.contains(t)) {
                    Some(split) => {
                        builds.push(split.build);
                        attaches.push(split.attach);
                    }
                    None => builds.push(item),
                }
            }
            _ => serial.push(item),
        }
    }
    attaches.append(&mut serial);
    for builds in per_table.values_mut() {
        builds.sort_by_key(build_priority);
    }
    (per_table, attaches)
}

/// How much slower than a plain btree build a slow access method's build is on the same table,
/// as a rough rule: a GIN build over a jsonb column took 5 to 25 times a btree build's time
/// on the same table, on PostgreSQL 15 and 18 alike.
const SLOW_BUILD_WEIGHT: u64 = 8;

/// The estimated cost of a build on a table of `table_bytes` (its rows as stored in the
/// backup, before compression), by which the restore starts the largest ready builds first:
/// the table's size, weighted for a slow index. A constraint counts as a plain build, so a
/// table's indexes still start before its constraints ([`build_priority`]).
pub(super) fn build_cost(item: &ScriptItem, table_bytes: u64) -> u64 {
    match item.header.kind {
        ItemKind::Index if item.header.slow_build => table_bytes.saturating_mul(SLOW_BUILD_WEIGHT),
        _ => table_bytes,
    }
}

/// Order of a loaded table's builds: plain indexes before constraints (adding a constraint
/// takes an ACCESS EXCLUSIVE lock that would hold up every other build on the table), and the
/// slow access methods first, since the longest build is the restore's critical path.
fn build_priority(item: &ScriptItem) -> (u8, u8) {
    let kind = if item.header.kind == ItemKind::Index {
        0
    } else {
        1
    };
    (kind, if item.header.slow_build { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ItemHeader;
    use crate::sql::{Marked, Sql};

    fn item(kind: ItemKind, sql: Sql, slow_build: bool) -> ScriptItem {
        ScriptItem {
            header: ItemHeader {
                kind,
                name: sql.text.clone(),
                table: Some("t".into()),
                marks: sql.marks,
                references: None,
                slow_build,
            },
            sql: sql.text,
        }
    }

    fn plain(text: &str) -> Sql {
        Sql::from(text.to_string())
    }

    #[test]
    fn keys_split_slow_indexes_build_first_and_attaches_run_before_the_rest() {
        let mut key = Sql::new();
        key.add_key(
            "ALTER TABLE ONLY t ADD CONSTRAINT t_pkey PRIMARY KEY (id);",
            Marked::AddKey {
                name: "t_pkey".into(),
                primary: true,
                columns: vec!["id".into()],
            },
        )
        .push_str("\n");
        let items = [
            item(ItemKind::Constraint, key, false),
            item(
                ItemKind::Index,
                plain("CREATE INDEX a ON t USING btree (k);"),
                false,
            ),
            item(
                ItemKind::Index,
                plain("CREATE INDEX b ON t USING gin (payload);"),
                true,
            ),
            item(ItemKind::Trigger, plain("CREATE TRIGGER x ..."), false),
        ];
        let loaded = HashSet::from(["t".to_string()]);
        let (per_table, serial) = schedule_post_data(items, &loaded, &HashSet::new());
        // The slow build first; the key's index build is a plain index build among the others.
        let builds: Vec<&str> = per_table["t"].iter().map(|i| &i.sql[..20]).collect();
        assert_eq!(
            builds,
            [
                "CREATE INDEX b ON t ",
                "CREATE UNIQUE INDEX ",
                "CREATE INDEX a ON t "
            ]
        );
        let serial: Vec<&str> = serial.iter().map(|i| i.sql.as_str()).collect();
        assert_eq!(
            serial,
            [
                "ALTER TABLE ONLY t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_pkey;\n",
                "CREATE TRIGGER x ..."
            ]
        );
        // A partitioned table's key is built whole, as one statement.
        let mut key = Sql::new();
        key.add_key(
            "ALTER TABLE ONLY t ADD CONSTRAINT t_pkey PRIMARY KEY (id);",
            Marked::AddKey {
                name: "t_pkey".into(),
                primary: true,
                columns: vec!["id".into()],
            },
        );
        let (per_table, _) =
            schedule_post_data([item(ItemKind::Constraint, key, false)], &loaded, &loaded);
        assert!(per_table["t"][0].sql.contains("PRIMARY KEY (id)"));
    }

    #[test]
    fn a_slow_index_weighs_more_than_a_plain_build_of_its_table_and_a_constraint_never_does() {
        let gin = item(ItemKind::Index, plain("CREATE INDEX g ..."), true);
        let btree = item(ItemKind::Index, plain("CREATE INDEX b ..."), false);
        let exclusion = item(ItemKind::Constraint, plain("ALTER TABLE ..."), true);
        assert!(build_cost(&gin, 100) > build_cost(&btree, 100));
        // A big table's plain build outweighs a small table's slow one.
        assert!(build_cost(&btree, 100 * SLOW_BUILD_WEIGHT) > build_cost(&gin, 10));
        assert_eq!(build_cost(&exclusion, 100), build_cost(&btree, 100));
    }

    #[test]
    fn a_non_superuser_is_told_which_grantors_it_could_not_act_as() {
        let mut grant = Sql::new();
        grant
            .push_str("GRANT SELECT ON TABLE t TO ")
            .role("analyst")
            .push_str(";\n");
        let mut sql = Sql::new();
        sql.acting_as("lead", grant);
        let edits = Edits {
            no_owner: false,
            no_acting_as: true,
            role: &|_| None,
        };
        let mut lost = Vec::new();
        let items = apply_options(
            vec![item(ItemKind::Acl, sql, false)],
            false,
            &edits,
            &mut lost,
        )
        .unwrap();
        assert!(
            !items[0].sql.contains("SESSION AUTHORIZATION"),
            "{}",
            items[0].sql
        );
        assert_eq!(lost.len(), 1);
        assert!(lost[0].contains("made by lead"), "{}", lost[0]);
        // --no-acl leaves the privilege items out.
        let mut lost = Vec::new();
        let none = apply_options(
            vec![item(ItemKind::Acl, plain("GRANT x;\n"), false)],
            true,
            &edits,
            &mut lost,
        )
        .unwrap();
        assert!(none.is_empty());
    }
}
