//! The restore level: a test restore into a scratch database made for it and dropped on every
//! path, then the restored copy compared with the manifest (rows and digests recomputed, the
//! object inventory per kind, large objects) and the change stream replayed onto it.

use super::*;
use crate::catalog::ident;

/// What the restore level found.
pub(super) struct RestoreOutcome {
    pub findings: Vec<Finding>,
    /// The measured RTO, when the restore itself went through.
    pub measured: Option<Measured>,
    /// How far a change stream carried the scratch copy.
    pub replayed_through: Option<OffsetDateTime>,
}

/// A test restore's times, with a change stream's replay added to both: a restore to the
/// newest point has its rows only once the stream is replayed.
pub(super) struct Measured {
    pub loaded_seconds: f64,
    pub ready_seconds: f64,
    pub statistics: StatisticsOutcome,
}

impl Measured {
    fn of(report: restore::RestoreReport) -> Self {
        Self {
            loaded_seconds: report.loaded_seconds.min(report.ready_seconds),
            ready_seconds: report.ready_seconds,
            statistics: report.statistics,
        }
    }

    fn and_replay(self, seconds: f64) -> Self {
        Self {
            loaded_seconds: self.loaded_seconds + seconds,
            ready_seconds: self.ready_seconds + seconds,
            ..self
        }
    }
}

/// The restore level: restore into a new scratch database, compare, drop it whatever happened.
pub(super) async fn check_restore(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    server: &PgTarget,
    options: &VerifyOptions,
) -> Result<RestoreOutcome, VerifyError> {
    let (jobs, interrupt) = (options.jobs, &options.interrupt);
    let admin = connect(server).await?;
    let now = OffsetDateTime::now_utc();
    sweep_stale_scratch(&admin, now).await;
    let name = scratch_name(&manifest.database_id, now);
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            ident(&name)
        ))
        .await
        .map_err(|e| {
            VerifyError::Scratch(format!("creating a scratch database: {}", describe(&e)))
        })?;
    let mut target = server.clone();
    target.config.dbname(&name);
    let roles_before = role_names(&admin).await;
    let outcome = tokio::select! {
        biased;
        outcome = restore_and_compare(store.clone(), manifest, &target, jobs) => outcome,
        _ = interrupt.cancelled() => Err(VerifyError::Interrupted),
    };
    // Restored subscriptions (disabled, never connected) would keep the scratch database.
    if let Ok(scratch) = connect(&target).await
        && let Err(e) = restore::drop_subscriptions(&scratch).await
    {
        tracing::warn!(database = %name, error = %describe(&e), "could not drop the scratch database's subscriptions");
    }
    let dropped = admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(&name)
        ))
        .await;
    if let Err(e) = &dropped {
        tracing::error!(database = %name, error = %describe(e), "the scratch database could not be dropped; drop it by hand");
    }
    if dropped.is_ok() {
        drop_created_roles(&admin, store.as_ref(), manifest, roles_before).await;
    }
    let outcome = outcome?;
    dropped.map_err(|e| {
        VerifyError::Scratch(format!(
            "dropping scratch database {name}: {}",
            describe(&e)
        ))
    })?;
    Ok(outcome)
}

async fn role_names(client: &tokio_postgres::Client) -> Option<HashSet<String>> {
    let rows = client
        .query("SELECT rolname::text FROM pg_catalog.pg_roles", &[])
        .await
        .ok()?;
    rows.iter().map(|r| r.try_get(0).ok()).collect()
}

/// Drops the backup's roles that the scratch run created (those not on the server before it).
async fn drop_created_roles(
    admin: &tokio_postgres::Client,
    store: &dyn Store,
    manifest: &Manifest,
    before: Option<HashSet<String>>,
) {
    let (Some(before), Some(after)) = (before, role_names(admin).await) else {
        return;
    };
    let Ok(Some(globals)) = restore::roles::read_globals(store, manifest).await else {
        return;
    };
    for role in globals.roles.iter().rev() {
        if after.contains(&role.name) && !before.contains(&role.name) {
            let sql = format!("DROP ROLE {}", ident(&role.name));
            if let Err(e) = admin.batch_execute(&sql).await {
                tracing::warn!(role = %role.name, error = %describe(&e), "could not drop a role the scratch restore created");
            }
        }
    }
}

const SCRATCH_PREFIX: &str = "backstop_verify_";
/// Scratch databases older than this were left by a run that was killed; they are dropped.
const STALE_SCRATCH: time::Duration = time::Duration::hours(6);

/// `backstop_verify_<database>_<unix seconds, 8 hex><4 random hex>`: unique, and its age is in
/// its name, so a later run can drop what a killed one left.
fn scratch_name(database_id: &str, now: OffsetDateTime) -> String {
    let label: String = database_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    format!(
        "{SCRATCH_PREFIX}{label}_{:08x}{:04x}",
        now.unix_timestamp().max(0),
        rand::random::<u16>()
    )
}

/// When a scratch database was created, from its name.
fn scratch_created(name: &str) -> Option<OffsetDateTime> {
    let suffix = name.strip_prefix(SCRATCH_PREFIX)?.rsplit('_').next()?;
    let seconds = i64::from_str_radix(suffix.get(..8)?, 16).ok()?;
    (suffix.len() == 12)
        .then(|| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .flatten()
}

/// Drops scratch databases a killed run left behind (older than six hours).
async fn sweep_stale_scratch(admin: &tokio_postgres::Client, now: OffsetDateTime) {
    let Ok(rows) = admin
        .query(
            "SELECT datname::text FROM pg_catalog.pg_database WHERE starts_with(datname, $1)",
            &[&SCRATCH_PREFIX],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = backstop_pg::value::<String>(&row, 0) else {
            continue;
        };
        if scratch_created(&name).is_some_and(|created| now - created > STALE_SCRATCH) {
            match admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    ident(&name)
                ))
                .await
            {
                Ok(()) => {
                    tracing::warn!(database = %name, "dropped a scratch database a killed verification left")
                }
                Err(e) => {
                    tracing::warn!(database = %name, error = %describe(&e), "could not drop a stale scratch database")
                }
            }
        }
    }
}

async fn restore_and_compare(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    target: &PgTarget,
    jobs: usize,
) -> Result<RestoreOutcome, VerifyError> {
    // A scratch server need not have the source's roles: the run creates those it lacks
    // (and drops them again, see `drop_created_roles`).
    let options = RestoreOptions {
        roles: RolesMode::Create,
        ..RestoreOptions::new(jobs.max(1))
    };
    let report = match restore::restore(store.clone(), manifest, target, &options, &|_| {})
        .await
        .map_err(RestoreError::cause)
    {
        Ok(report) => report,
        Err(RestoreError::Connect(e)) => return Err(VerifyError::Connect(e)),
        Err(e) => {
            return Ok(RestoreOutcome {
                findings: vec![part_problem(e)?],
                measured: None,
                replayed_through: None,
            });
        }
    };
    let mut findings = statistics_differences(&manifest.inventory, &report.statistics);
    let measured = Measured::of(report);
    findings.extend(compare_restored(target, manifest).await?);
    if !findings.is_empty() {
        return Ok(RestoreOutcome {
            findings,
            measured: Some(measured),
            replayed_through: None,
        });
    }
    let (findings, through, replay_seconds) = replay_stream(store, manifest, target).await;
    Ok(RestoreOutcome {
        findings,
        measured: Some(measured.and_replay(replay_seconds)),
        replayed_through: through,
    })
}

/// What restore-level verification compares, on a database already restored from `manifest`
/// (with no `--tables` subset): every table's rows and content digest recomputed with
/// `COPY ... TO STDOUT`, the large objects, and the object inventory per kind. No finding
/// means the database holds what the backup holds.
pub async fn compare_restored(
    target: &PgTarget,
    manifest: &Manifest,
) -> Result<Vec<Finding>, VerifyError> {
    let client = connect(target).await?;
    let mut findings = Vec::new();
    for (table, blocks) in manifest.tables() {
        let Some((_, first)) = blocks.first() else {
            continue;
        };
        let expected_rows: u64 = blocks.iter().map(|(_, t)| t.rows).sum();
        let expected_digest = blocks
            .iter()
            .try_fold(format!("{:032x}", 0), |sum, (_, t)| {
                RowDigest::combine_hex(&sum, &t.row_digest)
            });
        let columns = if first.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", first.columns.join(", "))
        };
        // An extension's configuration table is read back with the condition its extension
        // declares in the restored copy (what pg_dump dumps), never with SQL from the manifest.
        let source = match &first.extension_rows {
            Some(_) => {
                let condition = client
                    .query_opt(
                        "SELECT coalesce(x.extcondition[array_position(x.extconfig, to_regclass($1)::oid)], '') \
                         FROM pg_catalog.pg_extension x WHERE to_regclass($1)::oid = ANY (x.extconfig)",
                        &[&table],
                    )
                    .await
                    .ok()
                    .flatten()
                    .and_then(|row| row.try_get::<_, String>(0).ok());
                let Some(condition) = condition else {
                    findings.push(finding(
                        None,
                        format!("{table}: is not an extension's configuration table after restore"),
                    ));
                    continue;
                };
                format!(
                    "(SELECT {} FROM ONLY {table} {condition})",
                    first.columns.join(", ")
                )
            }
            None => format!("{table}{columns}"),
        };
        let mut digest = RowDigest::new();
        let copied = async {
            let stream = client.copy_out(&format!("COPY {source} TO STDOUT")).await?;
            let mut stream = std::pin::pin!(stream);
            while let Some(chunk) = stream.next().await {
                digest.update(&chunk?);
            }
            Ok::<(), tokio_postgres::Error>(())
        }
        .await;
        if let Err(e) = copied {
            findings.push(finding(
                None,
                format!(
                    "{table}: cannot be read back after restore: {}",
                    describe(&e)
                ),
            ));
            continue;
        }
        if digest.rows() != expected_rows {
            findings.push(finding(
                None,
                format!(
                    "{table}: {} rows after restore, the manifest says {expected_rows}",
                    digest.rows()
                ),
            ));
        } else if expected_digest.as_deref() != Some(digest.hex().as_str()) {
            findings.push(finding(
                None,
                format!(
                    "{table}: the restored rows differ from the backed-up rows (content digest)"
                ),
            ));
        }
    }
    findings.extend(compare_large_objects(&client, manifest).await);
    let version = backstop_pg::version::ServerVersion::read(&client)
        .await
        .map_err(|e| VerifyError::Scratch(e.to_string()))?;
    let objects = inventory::read(&client, version)
        .await
        .map_err(|e| VerifyError::Scratch(format!("taking the inventory: {e}")))?;
    let mut restored = inventory::counts(objects.iter());
    // Backups from before privileges were counted have no such kind: nothing to compare.
    if manifest.inventory.contains_key(inventory::PRIVILEGE_KIND) {
        let privileges = inventory::privileges(&client)
            .await
            .map_err(|e| VerifyError::Scratch(format!("counting privileges: {e}")))?;
        restored.insert(
            inventory::PRIVILEGE_KIND.to_string(),
            privileges.iter().map(|(_, count)| count).sum(),
        );
    }
    if manifest
        .inventory
        .contains_key(inventory::SECURITY_LABEL_KIND)
    {
        let labels = inventory::security_labels(&client)
            .await
            .map_err(|e| VerifyError::Scratch(format!("counting security labels: {e}")))?;
        restored.insert(
            inventory::SECURITY_LABEL_KIND.to_string(),
            labels.len() as u64,
        );
    }
    // Planner statistics are no object of the restored catalog: the restore's report says
    // whether they went in (`statistics_differences`).
    let mut backed_up = manifest.inventory.clone();
    backed_up.remove(inventory::STATISTICS_KIND);
    findings.extend(inventory_differences(&backed_up, &restored));
    Ok(findings)
}

/// The planner statistics a restore applied against those the backup carries, on a target
/// that imports them. A target that cannot ANALYZEs instead: nothing to compare.
fn statistics_differences(
    backed_up: &BTreeMap<String, u64>,
    outcome: &StatisticsOutcome,
) -> Vec<Finding> {
    let Some(&carried) = backed_up.get(inventory::STATISTICS_KIND) else {
        return Vec::new();
    };
    match outcome {
        StatisticsOutcome::Applied { relations, .. } if *relations as u64 != carried => {
            vec![finding(
                None,
                format!(
                    "planner statistics: {carried} relation(s) backed up, {relations} applied after restore"
                ),
            )]
        }
        _ => Vec::new(),
    }
}

/// With a change stream after this backup: replays it onto the verified scratch copy, to
/// prove the stream restores too. A replay that fails is a finding; its time adds to both
/// measured times (loaded and ready).
async fn replay_stream(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    target: &PgTarget,
) -> (Vec<Finding>, Option<OffsetDateTime>, f64) {
    use crate::stream::replay;
    let clock = Instant::now();
    let identities = manifest.keys.0.as_deref();
    let recovery = match replay::plan_from(store.as_ref(), manifest, identities).await {
        Ok(Some(recovery)) => recovery,
        Ok(None) => return (Vec::new(), None, 0.0),
        Err(e) => {
            return (
                vec![finding(
                    None,
                    format!("the change stream after this backup cannot be read: {e}"),
                )],
                None,
                clock.elapsed().as_secs_f64(),
            );
        }
    };
    match replay::replay(store, &recovery, target, identities).await {
        Ok(report) => (
            Vec::new(),
            report.recovered_to,
            clock.elapsed().as_secs_f64(),
        ),
        Err(e) => (
            vec![finding(
                None,
                format!("the change stream after this backup does not replay: {e}"),
            )],
            None,
            clock.elapsed().as_secs_f64(),
        ),
    }
}

/// The restored large objects' contents against the manifest's parts.
async fn compare_large_objects(
    client: &tokio_postgres::Client,
    manifest: &Manifest,
) -> Vec<Finding> {
    let parts: Vec<_> = manifest
        .parts
        .iter()
        .filter_map(|p| p.large_objects.as_ref())
        .collect();
    if parts.is_empty() {
        return Vec::new();
    }
    let objects: u64 = parts.iter().map(|p| p.objects).sum();
    let lines: u64 = parts.iter().map(|p| p.lines).sum();
    let digest = parts.iter().try_fold(format!("{:032x}", 0), |sum, p| {
        RowDigest::combine_hex(&sum, &p.digest)
    });
    match large_objects::digest_all(client, catalog::LARGE_OBJECT_BATCH).await {
        Err(reason) => vec![finding(
            None,
            format!("large objects: cannot be read back after restore: {reason}"),
        )],
        Ok((restored, _)) if restored != objects => vec![finding(
            None,
            format!("large objects: {restored} after restore, the manifest says {objects}"),
        )],
        Ok((_, read)) if read.rows() != lines || digest.as_deref() != Some(read.hex().as_str()) => {
            vec![finding(
                None,
                "large objects: the restored contents differ from the backed-up ones (content digest)",
            )]
        }
        Ok(_) => Vec::new(),
    }
}

/// Kinds whose object counts differ between the backup and the restored database.
pub fn inventory_differences(
    backed_up: &BTreeMap<String, u64>,
    restored: &BTreeMap<String, u64>,
) -> Vec<Finding> {
    let kinds: BTreeSet<&String> = backed_up.keys().chain(restored.keys()).collect();
    kinds
        .into_iter()
        .filter_map(|kind| {
            let before = backed_up.get(kind).copied().unwrap_or(0);
            let after = restored.get(kind).copied().unwrap_or(0);
            (before != after).then(|| {
                finding(
                    None,
                    format!(
                        "inventory: {before} {kind} object(s) backed up, {after} after restore"
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_differences_name_the_kind_and_both_counts() {
        let a = BTreeMap::from([("table".to_string(), 3), ("index".to_string(), 2)]);
        let b = BTreeMap::from([("table".to_string(), 3), ("view".to_string(), 1)]);
        let found: Vec<String> = inventory_differences(&a, &b)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "inventory: 2 index object(s) backed up, 0 after restore",
                "inventory: 0 view object(s) backed up, 1 after restore"
            ]
        );
        assert!(inventory_differences(&a, &a).is_empty());
    }

    #[test]
    fn statistics_applied_are_held_to_those_the_backup_carries() {
        let backed_up = BTreeMap::from([(inventory::STATISTICS_KIND.to_string(), 5)]);
        let applied = |relations| StatisticsOutcome::Applied {
            relations,
            analyzed: 0,
            dropped: Vec::new(),
        };
        assert!(statistics_differences(&backed_up, &applied(5)).is_empty());
        assert_eq!(
            statistics_differences(&backed_up, &applied(3))[0].to_string(),
            "planner statistics: 5 relation(s) backed up, 3 applied after restore"
        );
        // A target that cannot import them ANALYZEs; a backup from before carries none.
        let analyzed = StatisticsOutcome::Analyzed {
            tables: 2,
            dropped: Vec::new(),
        };
        assert!(statistics_differences(&backed_up, &analyzed).is_empty());
        assert!(statistics_differences(&BTreeMap::new(), &applied(3)).is_empty());
    }

    #[test]
    fn scratch_names_carry_their_creation_time() {
        let at = time::macros::datetime!(2026-11-22 06:00 UTC);
        let name = scratch_name("Main-DB.prod", at);
        assert!(name.starts_with("backstop_verify_main_db_prod_"), "{name}");
        assert!(name.len() <= 63);
        assert_eq!(scratch_created(&name), Some(at));
        assert_eq!(scratch_created("backstop_verify_main_nothex"), None);
        assert_eq!(scratch_created("app"), None);
    }
}
