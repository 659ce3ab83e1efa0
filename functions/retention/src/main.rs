use backstop::config::FunctionConfig;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use retention::{Deps, handler};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = FunctionConfig::from_lookup(|name| std::env::var(name).ok())?;
    let deps = Deps { config };
    run(service_fn(|event: LambdaEvent<Value>| {
        handler(event, &deps)
    }))
    .await
}
