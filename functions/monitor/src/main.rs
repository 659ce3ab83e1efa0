//! The monitor function: under the Lambda runtime, or the one job in `BACKSTOP_JOB`.

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let deps = monitor::Deps::new(common::Base::from_process(monitor::DEFAULT_NAME).await?)?;
    common::serve(|event| monitor::handler(event, &deps)).await
}
