//! What the Lambda functions share: the process around a handler ([`serve`]: under the Lambda
//! runtime, or the one job in `BACKSTOP_JOB` as a container task runs it), the dependencies
//! every function builds once at cold start ([`Base`]), how an event's shape is told apart
//! ([`Delivery`]), the command that re-runs a job ([`rerun_command`]), and the time an
//! invocation has left ([`invocation`]).

pub mod invocation;

use std::fmt::{Debug, Display};
use std::future::Future;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use backstop::alert::AlertSink;
use backstop::config::{ConfigError, Env, FunctionConfig};
use backstop::metrics::MetricsSink;
use backstop::store::Store;
use lambda_runtime::{Context, Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use lambda_runtime::Error;

/// The environment variable holding a job's request when the binary runs outside Lambda.
pub const JOB_VAR: &str = "BACKSTOP_JOB";

/// The function a container task stands in for (its re-run commands name it), when the
/// Lambda runtime does not say.
pub const FUNCTION_NAME_VAR: &str = "BACKSTOP_FUNCTION_NAME";

/// What every function is built from: its settings, store, AWS configuration, environment,
/// alert and metric sinks, and its name (for re-run commands).
pub struct Base {
    pub config: FunctionConfig,
    pub store: Arc<dyn Store>,
    pub aws: SdkConfig,
    pub env: Env,
    pub alerts: AlertSink,
    pub metrics: MetricsSink,
    pub function_name: String,
}

impl Base {
    /// From parts (tests pass their own store and environment).
    pub fn new(
        config: FunctionConfig,
        store: Arc<dyn Store>,
        aws: SdkConfig,
        env: Env,
        default_name: &str,
    ) -> Self {
        Self {
            // The logs of the run, for every alert it sends (the Lambda runtime names them).
            alerts: AlertSink::new(&aws, config.alert_topic.clone())
                .with_link(backstop::alert::run_logs_link(env.as_ref())),
            metrics: MetricsSink::new(&aws),
            function_name: env("AWS_LAMBDA_FUNCTION_NAME")
                .or_else(|| env(FUNCTION_NAME_VAR))
                .unwrap_or_else(|| default_name.into()),
            config,
            store,
            aws,
            env,
        }
    }

    /// From the process environment, once at cold start.
    pub async fn from_process(default_name: &str) -> Result<Self, ConfigError> {
        let config = FunctionConfig::from_lookup(|name| std::env::var(name).ok())?;
        let aws = backstop::aws::load_sdk_config().await;
        let store = backstop::store::open(&config.store, &aws);
        Ok(Self::new(
            config,
            store,
            aws,
            Arc::new(|name| std::env::var(name).ok()),
            default_name,
        ))
    }
}

/// Cancelled when a job (a container task, not a Lambda invocation) receives SIGTERM or
/// SIGINT: ECS stops a task (a Spot reclaim, a deployment) with SIGTERM and kills it 30 s
/// later, time enough for a run to remove what it stored, release its lease and alert.
pub fn stopping() -> tokio_util::sync::CancellationToken {
    static STOPPING: std::sync::OnceLock<tokio_util::sync::CancellationToken> =
        std::sync::OnceLock::new();
    STOPPING
        .get_or_init(tokio_util::sync::CancellationToken::new)
        .clone()
}

/// Cancels [`stopping`] on the first SIGTERM or SIGINT.
fn stop_on_signals() {
    tokio::spawn(async {
        backstop::signals::stop_signal().await;
        tracing::warn!("stop signal received: the job stops and cleans up");
        stopping().cancel();
    });
}

/// Runs `handler` for the process's life under the Lambda runtime when
/// `AWS_LAMBDA_RUNTIME_API` is set; otherwise runs the one job in `BACKSTOP_JOB` (the same JSON
/// as a Lambda request), prints the response as JSON and returns an error if it failed, so the
/// process exits non-zero (how an ECS task runs the same binary).
pub async fn serve<A, R, E, F, Fut>(handler: F) -> Result<(), Error>
where
    A: DeserializeOwned + Send + 'static,
    R: Serialize,
    E: Display + Debug + Into<Diagnostic>,
    F: Fn(LambdaEvent<A>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda_runtime::tracing::init_default_subscriber();
        return lambda_runtime::run(service_fn(handler)).await;
    }
    // A job: logs as JSON lines on stderr (the task's log stream), the response alone on stdout.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let job = std::env::var(JOB_VAR).map_err(|_| {
        format!("not under the Lambda runtime and {JOB_VAR} is not set: give the job's request as JSON in {JOB_VAR}")
    })?;
    let payload: A = serde_json::from_str(&job)
        .map_err(|e| format!("{JOB_VAR} is not a request this function takes: {e}"))?;
    stop_on_signals();
    // No deadline: a job runs to the end. Its id names it in leases and alerts.
    let mut context = Context::default();
    context.request_id = format!(
        "{}-{}",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        std::process::id()
    );
    match handler(LambdaEvent::new(payload, context)).await {
        Ok(response) => {
            println!("{}", serde_json::to_string(&response)?);
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "the job failed");
            Err(e.to_string().into())
        }
    }
}

/// What an event is: a scheduled EventBridge event (with its id, for duplicate detection) or
/// a request of the function's own shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery<T> {
    Scheduled { event_id: Option<String> },
    Request(T),
}

impl<T: DeserializeOwned> Delivery<T> {
    /// Tells the shapes apart: an EventBridge event carries `detail-type`.
    pub fn of(payload: Value) -> Result<Self, serde_json::Error> {
        if payload.get("detail-type").is_some() {
            let event: CloudWatchEvent = serde_json::from_value(payload)?;
            Ok(Delivery::Scheduled { event_id: event.id })
        } else {
            serde_json::from_value(payload).map(Delivery::Request)
        }
    }
}

/// The AWS CLI command that runs `function` again with `payload`.
pub fn rerun_command(function: &str, payload: &Value) -> String {
    // Asynchronous: the AWS CLI gives up on a synchronous answer after 60 s, and a backup or a
    // verification takes longer; the run's outcome arrives as its alert.
    format!(
        "aws lambda invoke --function-name {function} --invocation-type Event --cli-binary-format raw-in-base64-out --payload '{payload}' /dev/null"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Ask {
        database: String,
    }

    #[test]
    fn scheduled_events_and_requests_are_told_apart() {
        let scheduled = serde_json::json!({
            "version": "0", "id": "evt-1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2026-01-01T00:00:00Z", "region": "eu-west-1", "resources": [], "detail": {}
        });
        assert_eq!(
            Delivery::<Ask>::of(scheduled).unwrap(),
            Delivery::Scheduled {
                event_id: Some("evt-1".into())
            }
        );
        assert_eq!(
            Delivery::<Ask>::of(serde_json::json!({"database": "main"})).unwrap(),
            Delivery::Request(Ask {
                database: "main".into()
            })
        );
        assert!(Delivery::<Ask>::of(serde_json::json!({"db": 1})).is_err());
    }

    #[test]
    fn the_rerun_command_carries_the_payload() {
        assert_eq!(
            rerun_command("backstop-backup", &serde_json::json!({"database": "main"})),
            "aws lambda invoke --function-name backstop-backup --invocation-type Event \
             --cli-binary-format raw-in-base64-out --payload '{\"database\":\"main\"}' /dev/null"
        );
    }
}
