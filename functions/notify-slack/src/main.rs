use aws_lambda_events::event::sns::SnsEvent;
use backstop::aws::load_sdk_config;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use notify_slack::{Deps, handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let aws = load_sdk_config().await;
    let deps = Deps::from_env(|name| std::env::var(name).ok(), &aws).await?;
    run(service_fn(|event: LambdaEvent<SnsEvent>| {
        handler(event, &deps)
    }))
    .await
}
