//! AWS SDK configuration and client factories, built once per process.
//!
//! The endpoint comes from the standard `AWS_ENDPOINT_URL` (read by `aws-config`), so any
//! S3-compatible server works without a code branch; an explicit endpoint switches S3 to
//! path-style addressing, which such servers expect. HTTPS is rustls on ring, as for
//! PostgreSQL, with the system's root certificates.

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Loads the shared SDK configuration from the environment (region, credentials, endpoint).
pub async fn load_sdk_config() -> SdkConfig {
    config_loader().load().await
}

/// The SDK's configuration loader with Backstop's HTTPS client, to be completed (an endpoint,
/// credentials) and loaded.
pub fn config_loader() -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(https)
}

/// The one S3 client factory.
///
/// Response checksums are validated only when an operation requires it: Backstop hashes every
/// part it reads and compares the SHA-256 with the manifest, so a second SDK-side pass adds
/// nothing, and S3-compatible servers disagree on the checksum they return for multipart
/// objects (S3 sends a composite `-N` checksum the SDK skips; others send a full-object one
/// that is not what the SDK computes).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
    if config.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The string value of a Secrets Manager secret (an ARN or a name); the error says why it
/// could not be read, never the value.
pub async fn secret_string(config: &SdkConfig, id: &str) -> Result<String, String> {
    let output = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| format!("secret {id} is unreadable: {}", describe_error(&e)))?;
    output
        .secret_string()
        .map(str::to_string)
        .ok_or_else(|| format!("secret {id} holds binary data, not a string"))
}

/// An SDK error on one line: the service's code and message when it sent them, otherwise the
/// whole cause chain (timeouts, DNS, connection refused).
pub fn describe_error<E>(error: &E) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => aws_sdk_s3::error::DisplayErrorContext(error)
            .to_string()
            .replace('\n', " "),
    }
}
