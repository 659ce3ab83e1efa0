//! Before anything is restored: every security label provider the restore's labels name (on
//! objects, on the roles it creates, on the database it creates) must be loaded on the
//! target, or the restore would stop at the first label, half done.

use std::collections::BTreeSet;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::RestoreError;
use super::roles::RolePlan;
use crate::catalog::ident;
use crate::globals::Globals;
use crate::item::ItemKind;
use crate::script::ScriptItem;

/// The providers (as written, quoted where needed) that the label items name.
pub(super) fn providers(items: &[ScriptItem]) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| i.header.kind == ItemKind::SecurityLabel)
        .filter_map(|i| {
            let rest = i.sql.trim_start().strip_prefix("SECURITY LABEL FOR ")?;
            rest.split_once(" ON ").map(|(p, _)| p.to_string())
        })
        // A provider is one identifier as the backup quoted it; anything else is not probed.
        .filter(|p| crate::manifest::is_identifier_path(p, 1))
        .collect()
}

/// The providers of the labels on the roles the restore creates, and on the database when it
/// creates that too (quoted as the statements write them).
pub(super) fn global_providers(
    globals: &Globals,
    plan: &RolePlan,
    create_database: bool,
) -> BTreeSet<String> {
    let roles = plan.create.iter().flat_map(|c| &c.role.security_labels);
    let database = globals
        .database
        .security_labels
        .iter()
        .filter(|_| create_database);
    roles.chain(database).map(|l| ident(&l.provider)).collect()
}

/// Asks the server about each provider with a label on an object that cannot exist: the server
/// looks the provider up first, so "not loaded" (invalid parameter) means it is missing, and
/// "no such schema" that it is there. Nothing is changed either way.
pub(super) async fn check_providers(
    client: &Client,
    backup: &str,
    providers: BTreeSet<String>,
) -> Result<(), RestoreError> {
    let mut missing = Vec::new();
    for provider in providers {
        let probe =
            format!("SECURITY LABEL FOR {provider} ON SCHEMA \"backstop: no such schema\" IS NULL");
        match client.batch_execute(&probe).await {
            Err(e) if e.code() == Some(&SqlState::INVALID_PARAMETER_VALUE) => {
                missing.push(provider)
            }
            _ => {}
        }
    }
    match missing.is_empty() {
        true => Ok(()),
        false => Err(RestoreError::LabelProvidersMissing {
            backup: backup.to_string(),
            providers: missing.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ItemHeader;

    fn item(kind: ItemKind, sql: &str) -> ScriptItem {
        ScriptItem {
            header: ItemHeader {
                kind,
                name: String::new(),
                table: None,
                marks: Vec::new(),
                references: None,
                slow_build: false,
            },
            sql: sql.to_string(),
        }
    }

    #[test]
    fn providers_are_read_from_label_items_only() {
        let items = [
            item(
                ItemKind::SecurityLabel,
                "SECURITY LABEL FOR selinux ON TABLE public.t IS 'x';\n",
            ),
            item(
                ItemKind::SecurityLabel,
                "SECURITY LABEL FOR \"My Provider\" ON COLUMN public.t.c IS 'y';\n",
            ),
            item(
                ItemKind::Table,
                "SECURITY LABEL FOR other ON TABLE t IS 'z';\n",
            ),
        ];
        assert_eq!(
            providers(&items).into_iter().collect::<Vec<_>>(),
            ["\"My Provider\"", "selinux"]
        );
    }
}
