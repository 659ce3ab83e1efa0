//! What a restore of some tables (`--tables`) takes: the tables named, and which items run.

use std::collections::HashSet;

use tokio_postgres::Client;

use super::RestoreError;
use super::target::present_tables;
use crate::item::ItemKind;
use crate::manifest::{Manifest, Part, TablePart};
use crate::script::ScriptItem;

/// Which items a restore of some tables (`--tables`) runs: the selected tables' own items
/// (their indexes, constraints, NOT VALID checks, triggers, comments, grants, the sequences
/// they own) and their foreign keys to tables that will be there. Into an empty target, the
/// objects they may need (schemas, types, functions) come too; beside the target's objects,
/// nothing else. Views, other tables' items and large objects are left out.
pub(super) struct ItemFilter<'a> {
    selected: Option<&'a HashSet<String>>,
    beside: bool,
    /// Into a new schema (`--into-schema`): the tables alone, with nothing that would act on
    /// or through the live database's objects (triggers, rules, publication membership,
    /// partition attachments); foreign keys only among the selected tables.
    apart: bool,
    /// Sequences the selected tables own (`OWNED BY`): dropped with them, made with them.
    pub(super) owned_sequences: HashSet<String>,
    /// Tables a foreign key of a selected table may reference: the selected ones, and
    /// (beside the target's objects) those the target has.
    referable: HashSet<String>,
    /// Foreign keys of selected tables to tables that will not be there, for the report.
    pub(super) left_out: Vec<String>,
}

impl<'a> ItemFilter<'a> {
    pub(super) async fn new(
        client: &Client,
        selected: Option<&'a HashSet<String>>,
        (beside, apart): (bool, bool),
        pre_items: &[ScriptItem],
        post_items: &[ScriptItem],
    ) -> Result<Self, RestoreError> {
        let mut filter = Self {
            selected,
            beside: beside || apart,
            apart,
            owned_sequences: HashSet::new(),
            referable: HashSet::new(),
            left_out: Vec::new(),
        };
        let Some(selected) = selected else {
            return Ok(filter);
        };
        let of_selected = |i: &&ScriptItem| {
            i.header
                .table
                .as_ref()
                .is_some_and(|t| selected.contains(t))
        };
        filter.owned_sequences = pre_items
            .iter()
            .filter(of_selected)
            .filter(|i| i.header.kind == ItemKind::SequenceOwnedBy)
            .map(|i| i.header.name.clone())
            .collect();
        let references: Vec<(&ScriptItem, String)> = post_items
            .iter()
            .filter(of_selected)
            .filter(|i| i.header.kind == ItemKind::ForeignKey)
            .filter_map(|i| i.header.references.clone().map(|t| (i, t)))
            .collect();
        filter.referable = selected.clone();
        if beside && !apart {
            let names: Vec<String> = references.iter().map(|(_, t)| t.clone()).collect();
            filter
                .referable
                .extend(present_tables(client, &names).await?);
        }
        filter.left_out = references
            .iter()
            .filter(|(_, t)| !filter.referable.contains(t))
            .map(|(i, t)| {
                format!(
                    "foreign key {} of {} (it references {t}, which is not restored)",
                    i.header.name,
                    i.header.table.as_deref().unwrap_or_default()
                )
            })
            .collect();
        if apart {
            let (pre, post) = (pre_items.iter(), post_items.iter());
            filter.left_out.extend(
                pre.chain(post)
                    .filter(of_selected)
                    .filter(|i| Self::acts_on_the_live_database(i.header.kind))
                    .map(|i| {
                        format!(
                            "{} {} of {} (in a schema apart it would act on the live database's objects)",
                            format!("{:?}", i.header.kind).to_lowercase(),
                            i.header.name,
                            i.header.table.as_deref().unwrap_or_default()
                        )
                    }),
            );
        }
        Ok(filter)
    }

    /// Items of a table that, made on a copy in a schema apart, would act on or through the
    /// live objects: a trigger or rule runs the application's code or writes elsewhere, a
    /// publication member would publish it, a partition attachment would join it to a live
    /// table.
    fn acts_on_the_live_database(kind: ItemKind) -> bool {
        matches!(
            kind,
            ItemKind::Trigger
                | ItemKind::Rule
                | ItemKind::PublicationMember
                | ItemKind::PartitionAttach
                | ItemKind::IndexAttach
        )
    }

    pub(super) fn keeps(&self, item: &ScriptItem) -> bool {
        let Some(selected) = self.selected else {
            return true;
        };
        let header = &item.header;
        match header.kind {
            ItemKind::View
            | ItemKind::MaterializedView
            | ItemKind::Refresh
            | ItemKind::LargeObject
            | ItemKind::LargeObjectAcl => return false,
            _ => {}
        }
        if self.apart && Self::acts_on_the_live_database(header.kind) {
            return false;
        }
        match &header.table {
            Some(table) if !selected.contains(table) => false,
            // A NOT VALID check is ordered with the foreign keys; a foreign key needs the
            // table it references.
            Some(_) if header.kind == ItemKind::ForeignKey => header
                .references
                .as_ref()
                .is_none_or(|t| self.referable.contains(t)),
            Some(_) => true,
            None if self.beside => {
                self.owned_sequences.contains(&header.name)
                    && matches!(
                        header.kind,
                        ItemKind::Sequence
                            | ItemKind::SequenceValue
                            | ItemKind::Acl
                            | ItemKind::SecurityLabel
                    )
            }
            None => true,
        }
    }
}

pub(super) fn select_tables(
    manifest: &Manifest,
    tables: &std::collections::BTreeMap<&str, Vec<(&Part, &TablePart)>>,
    names: &[String],
) -> Result<HashSet<String>, RestoreError> {
    let mut selected = HashSet::new();
    let mut unknown = Vec::new();
    for name in names {
        let matches = matching_tables(tables, name);
        // A pattern takes every table it matches; a plain name must name exactly one.
        if matches.len() == 1 || (is_pattern(name) && !matches.is_empty()) {
            selected.extend(matches.into_iter().map(str::to_string));
        } else {
            unknown.push(name.clone());
        }
    }
    if unknown.is_empty() {
        Ok(selected)
    } else {
        Err(RestoreError::UnknownTables {
            backup: manifest.backup_id.clone(),
            names: unknown.join(", "),
        })
    }
}

/// The tables whose data `--exclude-table-data` patterns (or `--schema-only`: all) leave out.
/// A pattern that matches no table is refused, as a name in `--tables` is.
pub(super) fn data_left_out(
    manifest: &Manifest,
    tables: &std::collections::BTreeMap<&str, Vec<(&Part, &TablePart)>>,
    patterns: &[String],
    schema_only: bool,
) -> Result<HashSet<String>, RestoreError> {
    if schema_only {
        return Ok(tables.keys().map(|t| t.to_string()).collect());
    }
    select_tables(manifest, tables, patterns)
}

/// Whether `name` holds a wildcard (`*` any characters, `?` one).
pub fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// The tables `name` names: `schema.table` or `table` (any schema), each part a literal or a
/// pattern with `*` and `?` as pg_dump takes them; a part in double quotes is taken as written,
/// others also match case-insensitively.
fn matching_tables<'t>(
    tables: &std::collections::BTreeMap<&'t str, Vec<(&Part, &TablePart)>>,
    name: &str,
) -> Vec<&'t str> {
    let (schema_pattern, table_pattern) = split_qualified(name);
    tables
        .iter()
        .filter(|(qualified, blocks)| {
            if **qualified == name {
                return true;
            }
            let Some((_, t)) = blocks.first() else {
                return false;
            };
            schema_pattern
                .as_deref()
                .is_none_or(|p| part_matches(p, &t.schema))
                && part_matches(&table_pattern, &t.name)
        })
        .map(|(q, _)| *q)
        .collect()
}

/// `schema.table` split at its first dot outside double quotes.
fn split_qualified(name: &str) -> (Option<String>, String) {
    let mut quoted = false;
    for (i, c) in name.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => return (Some(name[..i].to_string()), name[i + 1..].to_string()),
            _ => {}
        }
    }
    (None, name.to_string())
}

/// Whether one part of a name matches: quoted, exactly; unquoted, ignoring case.
fn part_matches(pattern: &str, actual: &str) -> bool {
    match pattern.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(exact) => glob(&exact.replace("\"\"", "\""), actual),
        None => glob(&pattern.to_lowercase(), &actual.to_lowercase()),
    }
}

/// `*` and `?` wildcards over characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_pg_dump_patterns_do() {
        assert!(glob("app*", "app_users"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
        assert!(glob("*_log", "audit_log") && !glob("*_log", "audit_logs"));
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy"));
        assert!(part_matches("Users", "users") && part_matches("\"Users\"", "Users"));
        assert!(!part_matches("\"Users\"", "users"));
        assert_eq!(
            split_qualified("\"my.schema\".t*"),
            (Some("\"my.schema\"".into()), "t*".into())
        );
        assert_eq!(split_qualified("orders"), (None, "orders".into()));
    }
}
