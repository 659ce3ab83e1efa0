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

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A subscription as the catalog describes it (`header.q` is its quoted name). The options a
/// version brought are `None` when the source server predates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub header: Header,
    /// The connection string: a secret, never put into a log line or an error.
    pub conninfo: String,
    pub slot: Option<String>,
    /// The publications it subscribes to, quoted, joined by `, `.
    pub publications: String,
    pub synchronous_commit: String,
    /// 14+.
    pub binary: Option<bool>,
    /// 14+.
    pub streaming: Option<Streaming>,
    /// 15+.
    pub two_phase: Option<bool>,
    pub disable_on_error: Option<bool>,
    /// 16+.
    pub password_required: Option<bool>,
    pub run_as_owner: Option<bool>,
    pub origin: Option<String>,
    /// 17+.
    pub failover: Option<bool>,
}

/// How a subscription applies a transaction in progress (`substream`: a bool in 14 and 15,
/// then `f`, `t` or `p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    /// Only once it is committed.
    Off,
    /// Spooled to files as it streams in.
    On,
    /// Applied by parallel workers as it streams in (16+).
    Parallel,
}

impl Streaming {
    /// From the catalog's one-letter code.
    pub fn from_code(code: &str) -> Self {
        match code {
            "t" => Streaming::On,
            "p" => Streaming::Parallel,
            _ => Streaming::Off,
        }
    }
}

pub(super) async fn subscriptions(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    catalog.items.extend(get(db).await?.iter().map(dump));
    Ok(())
}

/// Every subscription of the current database; none when the backup role cannot read their
/// connection strings.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Subscription>, CatalogError> {
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
        return Ok(Vec::new());
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
    let mut subscriptions = Vec::new();
    for row in db.query("subscriptions", &sql).await? {
        subscriptions.push(Subscription {
            header: Header {
                owner: row.get("owner")?,
                ..Header::bare(&row)?
            },
            conninfo: row.get("conninfo")?,
            slot: row.get("slot")?,
            publications: row
                .get::<Option<String>>("publications")?
                .unwrap_or_default(),
            synchronous_commit: row.get("synchronous_commit")?,
            binary: row.get("binary")?,
            streaming: row
                .get::<Option<String>>("streaming")?
                .map(|code| Streaming::from_code(&code)),
            two_phase: row.get("two_phase")?,
            disable_on_error: row.get("disable_on_error")?,
            password_required: row.get("password_required")?,
            run_as_owner: row.get("run_as_owner")?,
            origin: row.get("origin")?,
            failover: row.get("failover")?,
        });
    }
    Ok(subscriptions)
}

/// The item that creates `subscription`, not connected and disabled.
pub(super) fn dump(subscription: &Subscription) -> Item {
    let header = &subscription.header;
    let mut options = vec!["connect = false".to_string()];
    options.push(match &subscription.slot {
        Some(slot) => format!("slot_name = {}", literal(slot)),
        None => "slot_name = NONE".to_string(),
    });
    let flag = |option: &str, value: Option<bool>| value.map(|on| format!("{option} = {on}"));
    options.extend(flag("binary", subscription.binary));
    if let Some(streaming) = subscription.streaming {
        let mode = match streaming {
            Streaming::On => "on",
            Streaming::Parallel => "parallel",
            Streaming::Off => "off",
        };
        options.push(format!("streaming = {mode}"));
    }
    options.extend(flag("two_phase", subscription.two_phase));
    options.extend(flag("disable_on_error", subscription.disable_on_error));
    options.extend(flag("password_required", subscription.password_required));
    options.extend(flag("run_as_owner", subscription.run_as_owner));
    options.extend(flag("failover", subscription.failover));
    options.push(format!(
        "synchronous_commit = {}",
        literal(&subscription.synchronous_commit)
    ));
    if let Some(origin) = &subscription.origin {
        options.push(format!("origin = {}", literal(origin)));
    }
    let mut sql = Sql::from(format!(
        "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH ({});\n",
        header.q,
        literal(&subscription.conninfo),
        subscription.publications,
        options.join(", ")
    ));
    sql.push_str(&newer_server_defaults(subscription));
    sql.append(header.tail("SUBSCRIPTION"));
    Item::new(ItemKind::Subscription, "", &header.name, sql)
        .owning([oid_ref(class::PG_SUBSCRIPTION, header.oid)])
}

/// Statements that give `subscription`, restored onto a newer server, the behaviour it had
/// where the newer server's defaults differ: the options its source server did not have.
fn newer_server_defaults(subscription: &Subscription) -> String {
    let mut steps = Vec::new();
    if subscription.run_as_owner.is_none() {
        steps.push(("160000", "run_as_owner = true"));
    }
    if subscription.streaming.is_none() {
        steps.push(("180000", "streaming = off"));
    }
    steps
        .iter()
        .map(|(from, option)| {
            format!(
                "DO $$BEGIN IF current_setting('server_version_num')::int >= {from} THEN \
                 ALTER SUBSCRIPTION {} SET ({option}); END IF; END$$;\n",
                subscription.header.q
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    /// A subscription as `get` reads it from a server of `major`, each option at its value
    /// there by default.
    fn on(major: u32) -> Subscription {
        let since = |version: u32| major >= version;
        Subscription {
            header: header("sub", Some("app")),
            conninfo: "host=primary dbname=shop".into(),
            slot: Some("sub".into()),
            publications: "\"Orders\", stock".into(),
            synchronous_commit: "off".into(),
            binary: since(14).then_some(false),
            streaming: since(14).then_some(if since(18) {
                Streaming::Parallel
            } else {
                Streaming::Off
            }),
            two_phase: since(15).then_some(false),
            disable_on_error: since(15).then_some(false),
            password_required: since(16).then_some(true),
            run_as_owner: since(16).then_some(false),
            origin: since(16).then(|| "any".into()),
            failover: since(17).then_some(false),
        }
    }

    const CREATE: &str = "CREATE SUBSCRIPTION sub CONNECTION 'host=primary dbname=shop' PUBLICATION \"Orders\", stock WITH (connect = false, slot_name = 'sub'";
    const OWNER: &str = "ALTER SUBSCRIPTION sub OWNER TO app;\n";

    fn keeps(option: &str, from: u32) -> String {
        format!(
            "DO $$BEGIN IF current_setting('server_version_num')::int >= {from} THEN \
             ALTER SUBSCRIPTION sub SET ({option}); END IF; END$$;\n"
        )
    }

    #[test]
    fn each_versions_options_and_what_a_newer_server_would_change() {
        let sql = |major: u32| dump(&on(major)).sql;
        assert_eq!(
            sql(13),
            format!(
                "{CREATE}, synchronous_commit = 'off');\n{}{}{OWNER}",
                keeps("run_as_owner = true", 160_000),
                keeps("streaming = off", 180_000)
            )
        );
        assert_eq!(
            sql(14),
            format!(
                "{CREATE}, binary = false, streaming = off, synchronous_commit = 'off');\n{}{OWNER}",
                keeps("run_as_owner = true", 160_000)
            )
        );
        let fifteen =
            ", binary = false, streaming = off, two_phase = false, disable_on_error = false";
        assert_eq!(
            sql(15),
            format!(
                "{CREATE}{fifteen}, synchronous_commit = 'off');\n{}{OWNER}",
                keeps("run_as_owner = true", 160_000)
            )
        );
        let sixteen = ", password_required = true, run_as_owner = false";
        assert_eq!(
            sql(16),
            format!(
                "{CREATE}{fifteen}{sixteen}, synchronous_commit = 'off', origin = 'any');\n{OWNER}"
            )
        );
        assert_eq!(
            sql(17),
            format!(
                "{CREATE}{fifteen}{sixteen}, failover = false, synchronous_commit = 'off', origin = 'any');\n{OWNER}"
            )
        );
        assert_eq!(
            sql(18),
            format!(
                "{CREATE}, binary = false, streaming = parallel, two_phase = false, disable_on_error = false\
                 {sixteen}, failover = false, synchronous_commit = 'off', origin = 'any');\n{OWNER}"
            )
        );
    }

    #[test]
    fn no_slot_streaming_on_and_a_comment() {
        let mut subscription = on(16);
        subscription.slot = None;
        subscription.streaming = Some(Streaming::On);
        subscription.header.comment = Some("from the shop".into());
        let item = dump(&subscription);
        assert!(
            item.sql
                .contains("slot_name = NONE, binary = false, streaming = on,")
        );
        assert!(item.sql.ends_with(&format!(
            "{OWNER}COMMENT ON SUBSCRIPTION sub IS 'from the shop';\n"
        )));
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::Subscription, "", "sub")
        );
        assert_eq!(item.owns, [oid_ref(class::PG_SUBSCRIPTION, 16_400)]);
        assert_eq!(Streaming::from_code("f"), Streaming::Off);
    }
}
