//! The backup function: under the Lambda runtime, or the one job in `BACKSTOP_JOB`.

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let deps = backup::Deps::new(common::Base::from_process(backup::DEFAULT_NAME).await?)?;
    common::serve(|event| backup::handler(event, &deps)).await
}
