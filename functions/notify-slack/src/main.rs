use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use notify_slack::{Deps, handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let deps = Deps::from_lookup(|name| std::env::var(name).ok())?;
    run(service_fn(|event: LambdaEvent<SnsEvent>| {
        handler(event, &deps)
    }))
    .await
}
