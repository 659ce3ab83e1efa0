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
    /// Sequences the selected tables own (`OWNED BY`): dropped with them, made with them.
    owned_sequences: HashSet<String>,
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
        beside: bool,
        pre_items: &[ScriptItem],
        post_items: &[ScriptItem],
    ) -> Result<Self, RestoreError> {
        let mut filter = Self {
            selected,
            beside,
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
        if beside {
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
        Ok(filter)
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
        let matches: Vec<&str> = tables
            .iter()
            .filter(|(qualified, blocks)| {
                let t = blocks.first().map(|(_, t)| *t);
                **qualified == name.as_str()
                    || t.is_some_and(|t| {
                        format!("{}.{}", t.schema, t.name) == *name || t.name == *name
                    })
            })
            .map(|(q, _)| *q)
            .collect();
        if matches.len() == 1 {
            selected.insert(matches[0].to_string());
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
