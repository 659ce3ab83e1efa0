//! The Slack notifier: under the Lambda runtime (fed by the alert topic).

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let aws = backstop::aws::load_sdk_config().await;
    let deps = notify_slack::Deps::from_env(|name| std::env::var(name).ok(), &aws).await?;
    common::serve(
        |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::sns::SnsEvent>| {
            notify_slack::handler(event, &deps)
        },
    )
    .await
}
