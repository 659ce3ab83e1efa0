use std::sync::Arc;

use backstop::aws::load_sdk_config;
use backstop::config::FunctionConfig;
use backstop::store;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use monitor::{Deps, handler};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = FunctionConfig::from_lookup(|name| std::env::var(name).ok())?;
    let aws = load_sdk_config().await;
    let store = store::open(&config.store, &aws);
    let deps = Deps::new(
        config,
        store,
        aws,
        Arc::new(|name| std::env::var(name).ok()),
    )?;
    run(service_fn(|event: LambdaEvent<Value>| {
        handler(event, &deps)
    }))
    .await
}
