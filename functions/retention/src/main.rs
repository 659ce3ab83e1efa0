//! The retention function: under the Lambda runtime, or the one job in `BACKSTOP_JOB`.

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let deps = retention::Deps::new(common::Base::from_process(retention::DEFAULT_NAME).await?)?;
    common::serve(|event| retention::handler(event, &deps)).await
}
