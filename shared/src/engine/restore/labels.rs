//! Before anything is restored: every security label provider the backup's labels name must
//! be loaded on the target, or the restore would stop at the first label, half done.

use std::collections::BTreeSet;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::RestoreError;
use crate::engine::item::ItemKind;
use crate::engine::script::ScriptItem;

/// The providers (as written, quoted where needed) that the label items name.
pub(super) fn providers(items: &[ScriptItem]) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| i.header.kind == ItemKind::SecurityLabel)
        .filter_map(|i| {
            let rest = i.sql.trim_start().strip_prefix("SECURITY LABEL FOR ")?;
            rest.split_once(" ON ").map(|(p, _)| p.to_string())
        })
        .collect()
}

/// Asks the server about each provider with a label on an object that cannot exist: the server
/// looks the provider up first, so "not loaded" (invalid parameter) means it is missing, and
/// "no such schema" that it is there. Nothing is changed either way.
pub(super) async fn check_providers(
    client: &Client,
    backup: &str,
    items: &[ScriptItem],
) -> Result<(), RestoreError> {
    let mut missing = Vec::new();
    for provider in providers(items) {
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
    use crate::engine::script::ItemHeader;

    fn item(kind: ItemKind, sql: &str) -> ScriptItem {
        ScriptItem {
            header: ItemHeader {
                kind,
                name: String::new(),
                table: None,
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
