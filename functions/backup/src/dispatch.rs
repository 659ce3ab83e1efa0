//! Handing a backup that will not fit in this invocation to the container task: the same
//! binary on ECS Fargate, started with `RunTask` and the job as its `BACKSTOP_JOB`.
//!
//! Where the backup runs is decided by `backstop::runner` from the last runs; this module
//! reads the facts, reserves the dispatch in the runner record (a conditional write, so two
//! invocations never start two tasks) and starts the task.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    KeyValuePair, LaunchType, NetworkConfiguration, PropagateTags, TaskOverride,
};
use backstop::config::{ConfigError, flag, positive_number};
use backstop::layout::DatabaseId;
use backstop::lease::{self, lease_key};
use backstop::pg::PgTarget;
use backstop::runner::{self, DispatchState, Dispatched, Placement};
use backstop::store::Store;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// The task definition (ARN or family) the backup function may start; unset: no dispatch.
pub const TASK_DEFINITION_VAR: &str = "BACKSTOP_TASK_DEFINITION";
/// The ECS cluster it runs in.
pub const TASK_CLUSTER_VAR: &str = "BACKSTOP_TASK_CLUSTER";
/// The container that gets the job (default `backstop`).
pub const TASK_CONTAINER_VAR: &str = "BACKSTOP_TASK_CONTAINER";
/// Comma-separated subnets and security groups of the task's network interface.
pub const TASK_SUBNETS_VAR: &str = "BACKSTOP_TASK_SUBNETS";
pub const TASK_SECURITY_GROUPS_VAR: &str = "BACKSTOP_TASK_SECURITY_GROUPS";
/// `true`: the task gets a public IP (a public subnet without NAT).
pub const TASK_PUBLIC_IP_VAR: &str = "BACKSTOP_TASK_PUBLIC_IP";
/// `true`: run on Fargate Spot (about 70% cheaper; an interrupted run is retried next schedule).
pub const TASK_SPOT_VAR: &str = "BACKSTOP_TASK_SPOT";
/// Seconds a dispatched run counts as in progress before its task takes the backup lease.
pub const TASK_START_VAR: &str = "BACKSTOP_TASK_START_SECONDS";

/// How the container task is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSettings {
    pub cluster: String,
    pub task_definition: String,
    pub container: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub public_ip: bool,
    pub spot: bool,
    pub start: Duration,
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl TaskSettings {
    /// From the environment: `None` when no task definition is configured; an error names a
    /// variable that is missing or wrong.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let Some(task_definition) = env(TASK_DEFINITION_VAR).filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        let cluster = env(TASK_CLUSTER_VAR)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing {
                var: TASK_CLUSTER_VAR,
                hint: "a task definition to dispatch to needs the ECS cluster to run it in",
            })?;
        let subnets = list(env(TASK_SUBNETS_VAR));
        if subnets.is_empty() {
            return Err(ConfigError::Missing {
                var: TASK_SUBNETS_VAR,
                hint: "a Fargate task needs at least one subnet (comma-separated ids)",
            });
        }
        Ok(Some(Self {
            cluster,
            task_definition,
            container: env(TASK_CONTAINER_VAR).unwrap_or_else(|| "backstop".into()),
            subnets,
            security_groups: list(env(TASK_SECURITY_GROUPS_VAR)),
            public_ip: flag(env, TASK_PUBLIC_IP_VAR, false)?,
            spot: flag(env, TASK_SPOT_VAR, false)?,
            start: Duration::from_secs(positive_number(env, TASK_START_VAR, 600)?),
        }))
    }
}

/// A backup handed to the container task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchDone {
    pub database: String,
    /// The started task's ARN.
    pub task: String,
    pub reason: String,
    /// The job the task runs (its `BACKSTOP_JOB`).
    pub job: Value,
}

/// What to do with a backup this invocation was asked for.
pub enum Decision {
    RunHere,
    Dispatched(DispatchDone),
    /// Another run has it (a dispatched task still starting or running).
    Busy(String),
    /// The task had to be started and could not be.
    Failed(String),
}

/// What [`decide`] works from.
pub struct Ask<'a> {
    pub database: &'a DatabaseId,
    pub target: &'a PgTarget,
    pub job: Value,
    pub request_id: &'a str,
    /// The time this invocation has left (after its reserve).
    pub time_left: Duration,
}

/// Decides where the backup runs and, when it is dispatched, starts the task.
pub async fn decide(
    ask: Ask<'_>,
    store: &dyn Store,
    ecs: &aws_sdk_ecs::Client,
    settings: Option<&TaskSettings>,
) -> Decision {
    match try_decide(ask, store, ecs, settings).await {
        Ok(decision) => decision,
        Err(reason) => Decision::Failed(reason),
    }
}

async fn try_decide(
    ask: Ask<'_>,
    store: &dyn Store,
    ecs: &aws_sdk_ecs::Client,
    settings: Option<&TaskSettings>,
) -> Result<Decision, String> {
    let database = ask.database;
    let store_error = |e: backstop::store::StoreError| e.to_string();
    let (record, version) = runner::read(store, database).await.map_err(store_error)?;
    let history = runner::history(store, database)
        .await
        .map_err(store_error)?;
    let now = OffsetDateTime::now_utc();
    let backup_lease = lease::read(store, &lease_key(database, "backup"))
        .await
        .map_err(store_error)?;
    if let Some(dispatched) = &record.dispatched
        && runner::dispatch_state(
            dispatched,
            history.newest_started,
            backup_lease.as_ref(),
            now,
        ) == DispatchState::InProgress
    {
        return Ok(Decision::Busy(format!(
            "a backup of {database} was dispatched to container task {} at {} and is still in progress",
            if dispatched.task.is_empty() {
                "(starting)"
            } else {
                &dispatched.task
            },
            dispatched.at
        )));
    }
    let out_of_time = record
        .out_of_time
        .as_ref()
        .filter(|o| history.newest_finished.is_none_or(|f| o.at > f));
    let size_now = if history.runs.is_empty() {
        None
    } else {
        database_size(ask.target).await
    };
    let estimate = runner::estimate(&history.runs, size_now);
    let reason = match runner::place(estimate.as_ref(), out_of_time, Some(ask.time_left)) {
        Placement::Here => return Ok(Decision::RunHere),
        Placement::Dispatch { reason } => reason,
    };
    let Some(settings) = settings else {
        tracing::warn!(
            %database,
            %reason,
            "this backup may not fit in the invocation, and no container task is configured \
             ({TASK_DEFINITION_VAR}): running it here"
        );
        return Ok(Decision::RunHere);
    };
    if let Some(held) = backup_lease.filter(|l| !l.token.is_empty() && !l.is_expired(now)) {
        return Ok(Decision::Busy(format!(
            "a backup of {database} is already running ({}, since {})",
            held.holder, held.acquired_at
        )));
    }
    // Reserve the dispatch first: of two invocations, only the one whose write lands starts a task.
    let mut reserved = record.clone();
    reserved.dispatched = Some(Dispatched {
        at: now,
        task: String::new(),
        request: ask.request_id.to_string(),
        reason: reason.clone(),
        until: now + settings.start,
    });
    let Some(reserved_version) = runner::write_if(store, database, &reserved, version.as_deref())
        .await
        .map_err(store_error)?
    else {
        return Ok(Decision::Busy(format!(
            "another invocation is dispatching a backup of {database}"
        )));
    };
    tracing::info!(%database, %reason, "dispatching the backup to the container task");
    match run_task(ecs, settings, &ask.job, ask.request_id).await {
        Ok(task) => {
            if let Some(d) = reserved.dispatched.as_mut() {
                d.task = task.clone();
            }
            if let Err(e) =
                runner::write_if(store, database, &reserved, Some(&reserved_version)).await
            {
                tracing::warn!(error = %e, "the task started but its ARN was not recorded");
            }
            Ok(Decision::Dispatched(DispatchDone {
                database: database.to_string(),
                task,
                reason,
                job: ask.job,
            }))
        }
        Err(e) => {
            // Nothing runs: take the reservation back so the next invocation tries again.
            if let Err(undo) =
                runner::write_if(store, database, &record, Some(&reserved_version)).await
            {
                tracing::warn!(error = %undo, "could not take back the dispatch reservation");
            }
            Err(format!(
                "the backup needs the container task ({reason}), and starting it failed: {e}; \
                 check the task definition {} and the function's ecs:RunTask and iam:PassRole \
                 permissions",
                settings.task_definition
            ))
        }
    }
}

/// `pg_database_size` now, or `None` (logged) when it cannot be read: the estimate then
/// scales nothing.
async fn database_size(target: &PgTarget) -> Option<u64> {
    let read = async {
        let client = backstop::pg::connect(target)
            .await
            .map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        row.try_get::<_, i64>(0).map_err(|e| e.to_string())
    };
    match read.await {
        Ok(bytes) => u64::try_from(bytes).ok(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the database's size for the estimate");
            None
        }
    }
}

/// Starts the task with `job` as its `BACKSTOP_JOB`; its ARN.
async fn run_task(
    ecs: &aws_sdk_ecs::Client,
    settings: &TaskSettings,
    job: &Value,
    request_id: &str,
) -> Result<String, String> {
    let network = AwsVpcConfiguration::builder()
        .set_subnets(Some(settings.subnets.clone()))
        .set_security_groups(
            (!settings.security_groups.is_empty()).then(|| settings.security_groups.clone()),
        )
        .assign_public_ip(if settings.public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| e.to_string())?;
    let overrides = TaskOverride::builder()
        .container_overrides(
            ContainerOverride::builder()
                .name(&settings.container)
                .environment(
                    KeyValuePair::builder()
                        .name(common::JOB_VAR)
                        .value(job.to_string())
                        .build(),
                )
                .build(),
        )
        .build();
    let started_by: String = format!("backstop {request_id}").chars().take(36).collect();
    let mut request = ecs.run_task();
    // Spot runs through the cluster's capacity provider; on-demand Fargate by launch type.
    request = if settings.spot {
        request.capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("FARGATE_SPOT")
                .weight(1)
                .build()
                .map_err(|e| e.to_string())?,
        )
    } else {
        request.launch_type(LaunchType::Fargate)
    };
    let output = request
        .cluster(&settings.cluster)
        .task_definition(&settings.task_definition)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(network)
                .build(),
        )
        .overrides(overrides)
        .started_by(started_by)
        .propagate_tags(PropagateTags::TaskDefinition)
        .count(1)
        .send()
        .await
        .map_err(|e| backstop::aws::describe_error(&e))?;
    if let Some(failure) = output.failures().first() {
        return Err(format!(
            "ECS refused the task: {} {}",
            failure.reason().unwrap_or("(no reason)"),
            failure.detail().unwrap_or_default()
        ));
    }
    output
        .tasks()
        .first()
        .and_then(|t| t.task_arn())
        .map(str::to_string)
        .ok_or_else(|| "ECS answered RunTask without a task".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn task_settings_are_all_or_nothing_and_name_what_is_missing() {
        assert_eq!(TaskSettings::from_env(&env(&[])).unwrap(), None);
        let missing_cluster = TaskSettings::from_env(&env(&[(TASK_DEFINITION_VAR, "arn:td")]));
        assert!(
            missing_cluster
                .unwrap_err()
                .to_string()
                .contains(TASK_CLUSTER_VAR)
        );
        let no_subnets = TaskSettings::from_env(&env(&[
            (TASK_DEFINITION_VAR, "arn:td"),
            (TASK_CLUSTER_VAR, "c"),
        ]));
        assert!(
            no_subnets
                .unwrap_err()
                .to_string()
                .contains(TASK_SUBNETS_VAR)
        );
        let settings = TaskSettings::from_env(&env(&[
            (TASK_DEFINITION_VAR, "arn:td"),
            (TASK_CLUSTER_VAR, "c"),
            (TASK_SUBNETS_VAR, "subnet-1, subnet-2"),
            (TASK_SPOT_VAR, "true"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(settings.subnets, ["subnet-1", "subnet-2"]);
        assert!(settings.spot && !settings.public_ip);
        assert_eq!(settings.container, "backstop");
        assert!(settings.security_groups.is_empty());
    }
}
