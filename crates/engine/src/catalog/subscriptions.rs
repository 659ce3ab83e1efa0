//! Subscriptions (`CREATE SUBSCRIPTION`), as pg_dump's `dumpSubscription` writes them:
//! `connect = false`, so a restore neither reaches the publisher nor creates a slot, and the
//! subscription comes back disabled, for the operator to enable once the publisher is right.
//! Every option the source's version knows is written out, and on a newer server the options
//! the source did not have keep the behaviour it had (as pg_dump migrates them): the apply
//! worker runs as the owner (16 made that an option), and streaming stays off (18 made
//! `parallel` the default).
//!
//! The connection string is readable by superusers and `pg_read_all_data` only; without it a subscription is left
//! unclaimed, and the inventory refuses it by name. It is never put into a log line or an
//! error: items name the subscription only.

use super::*;
use crate::sql::Sql;
use backstop_pg::version::ServerVersion;

pub(super) async fn subscriptions(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let readable = db
        .query(
            "subscription access",
            "SELECT has_column_privilege('pg_catalog.pg_subscription', 'subconninfo', 'SELECT') AS readable",
        )
        .await?;
    if !readable
        .first()
        .map(|r| r.get::<bool>("readable"))
        .transpose()?
        .unwrap_or(false)
    {
        return Ok(());
    }
    let v = db.version;
    let binary = if v.at_least(14) {
        "s.subbinary"
    } else {
        "NULL::bool"
    };
    // A bool in 14 and 15, then 'f', 't' or 'p'.
    let streaming = match v {
        v if v.at_least(16) => "s.substream::text",
        v if v.at_least(14) => "CASE WHEN s.substream THEN 't' ELSE 'f' END",
        _ => "NULL::text",
    };
    let (two_phase, disable_on_error) = if v.at_least(15) {
        ("s.subtwophasestate <> 'd'", "s.subdisableonerr")
    } else {
        ("NULL::bool", "NULL::bool")
    };
    let (password_required, run_as_owner, origin) = if v.at_least(16) {
        ("s.subpasswordrequired", "s.subrunasowner", "s.suborigin")
    } else {
        ("NULL::bool", "NULL::bool", "NULL::text")
    };
    let failover = if v.at_least(17) {
        "s.subfailover"
    } else {
        "NULL::bool"
    };
    let sql = format!(
        "SELECT s.oid, s.subname::text AS name, quote_ident(s.subname) AS q, s.subconninfo AS conninfo, \
         s.subslotname::text AS slot, s.subsynccommit AS synchronous_commit, \
         (SELECT string_agg(quote_ident(p), ', ') FROM unnest(s.subpublications) AS p) AS publications, \
         {binary} AS binary, {streaming} AS streaming, {two_phase} AS two_phase, \
         {disable_on_error} AS disable_on_error, {password_required} AS password_required, \
         {run_as_owner} AS run_as_owner, {origin} AS origin, {failover} AS failover, \
         quote_ident(pg_get_userbyid(s.subowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = s.oid AND classoid = 'pg_subscription'::regclass AND objsubid = 0) AS comment \
         FROM pg_subscription s \
         WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY s.subname"
    );
    for row in db.query("subscriptions", &sql).await? {
        let (oid, name, q, owner): (u32, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("owner")?,
        );
        let mut options = vec!["connect = false".to_string()];
        options.push(match row.get::<Option<String>>("slot")? {
            Some(slot) => format!("slot_name = {}", literal(&slot)),
            None => "slot_name = NONE".to_string(),
        });
        let flag = |column: &str, option: &str| -> Result<Option<String>, CatalogError> {
            Ok(row
                .get::<Option<bool>>(column)?
                .map(|on| format!("{option} = {on}")))
        };
        options.extend(flag("binary", "binary")?);
        if let Some(streaming) = row.get::<Option<String>>("streaming")? {
            let mode = match streaming.as_str() {
                "t" => "on",
                "p" => "parallel",
                _ => "off",
            };
            options.push(format!("streaming = {mode}"));
        }
        options.extend(flag("two_phase", "two_phase")?);
        options.extend(flag("disable_on_error", "disable_on_error")?);
        options.extend(flag("password_required", "password_required")?);
        options.extend(flag("run_as_owner", "run_as_owner")?);
        options.extend(flag("failover", "failover")?);
        options.push(format!(
            "synchronous_commit = {}",
            literal(&row.get::<String>("synchronous_commit")?)
        ));
        if let Some(origin) = row.get::<Option<String>>("origin")? {
            options.push(format!("origin = {}", literal(&origin)));
        }
        let mut sql = Sql::from(format!(
            "CREATE SUBSCRIPTION {q} CONNECTION {} PUBLICATION {} WITH ({});\n",
            literal(&row.get::<String>("conninfo")?),
            row.get::<Option<String>>("publications")?
                .unwrap_or_default(),
            options.join(", ")
        ));
        sql.push_str(&newer_server_defaults(&q, v));
        sql.owner(&format!("SUBSCRIPTION {q}"), &owner);
        sql.push_str(&comment_sql(
            &format!("SUBSCRIPTION {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::Subscription, "", &name, sql)
                .owning([oid_ref(class::PG_SUBSCRIPTION, oid)]),
        );
    }
    Ok(())
}

/// Statements that give a subscription from a server of `source`'s version, restored onto a
/// newer one, the behaviour it had where the newer server's defaults differ.
fn newer_server_defaults(q: &str, source: ServerVersion) -> String {
    let mut steps = Vec::new();
    if !source.at_least(16) {
        steps.push(("160000", "run_as_owner = true"));
    }
    if !source.at_least(14) {
        steps.push(("180000", "streaming = off"));
    }
    steps
        .iter()
        .map(|(from, option)| {
            format!(
                "DO $$BEGIN IF current_setting('server_version_num')::int >= {from} THEN \
                 ALTER SUBSCRIPTION {q} SET ({option}); END IF; END$$;\n"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_subscription_keeps_its_behaviour_on_a_newer_server() {
        let on_13 = newer_server_defaults("s", ServerVersion(130_023));
        assert!(on_13.contains(">= 160000 THEN ALTER SUBSCRIPTION s SET (run_as_owner = true)"));
        assert!(on_13.contains(">= 180000 THEN ALTER SUBSCRIPTION s SET (streaming = off)"));
        let on_15 = newer_server_defaults("s", ServerVersion(150_018));
        assert!(on_15.contains("run_as_owner") && !on_15.contains("streaming"));
        assert_eq!(newer_server_defaults("s", ServerVersion(160_014)), "");
    }
}
