//! The stream function: under the Lambda runtime, or the one job in `BACKSTOP_JOB`.

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let deps = stream::Deps::new(common::Base::from_process(stream::DEFAULT_NAME).await?)?;
    common::serve(|event| stream::handler(event, &deps)).await
}
