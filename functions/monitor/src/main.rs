use std::sync::Arc;

use backstop::config::FunctionConfig;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use monitor::{Deps, handler};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = FunctionConfig::from_lookup(|name| std::env::var(name).ok())?;
    let aws = backstop::aws::load_sdk_config().await;
    let store = backstop::store::open(&config.store, &aws);
    let deps = Deps {
        config,
        store,
        now: Arc::new(time::OffsetDateTime::now_utc),
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        handler(event, &deps)
    }))
    .await
}
