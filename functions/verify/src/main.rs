//! The verify function: under the Lambda runtime, or the one job in `BACKSTOP_JOB`.

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let deps = verify::Deps::new(common::Base::from_process(verify::DEFAULT_NAME).await?)?;
    common::serve(|event| verify::handler(event, &deps)).await
}
