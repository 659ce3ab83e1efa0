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
/// cause chain's messages (timeouts, DNS, connection refused, missing credentials), each once
/// and without the SDK's debug dump, followed by what to do when the cause is a known one.
pub fn describe_error<E>(error: &E) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
{
    let said = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => cause_chain(error),
    };
    match fix_for(&said) {
        Some(fix) => format!("{said}; {fix}"),
        None => said,
    }
}

/// The messages of `error` and its sources, joined, each said once.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut line = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = cause.to_string().replace('\n', " ");
        if !text.is_empty() && !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}

/// What to do about an AWS failure whose cause is a known one.
pub fn fix_for(said: &str) -> Option<&'static str> {
    let lower = said.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&[
        "expiredtoken",
        "token has expired",
        "token is expired",
        "sso session",
    ]) {
        Some("the AWS session expired: renew it (e.g. `aws sso login`) and run again")
    } else if has(&[
        "no credentials",
        "credentials provider",
        "credential provider",
        "no providers in chain",
        "could not load credentials",
        "failed to load credentials",
    ]) {
        Some(
            "no AWS credentials were found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY), or run on a host with an instance role",
        )
    } else if has(&["kms"]) && has(&["accessdenied", "access denied", "not authorized"]) {
        Some(
            "the credentials may not use the bucket's KMS key: grant kms:Decrypt (and kms:GenerateDataKey to write) on it",
        )
    } else if has(&["invalidobjectstate"]) {
        Some("the object is archived (Glacier): restore it first, as docs/runbook.md step 5 shows")
    } else if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
    ]) {
        Some(
            "S3's endpoint name did not resolve: check the network, AWS_REGION and AWS_ENDPOINT_URL",
        )
    } else if has(&[
        "connection refused",
        "connect error",
        "tcp connect",
        "(connect)",
    ]) {
        Some(
            "S3's endpoint refused the connection: check the network, a proxy and AWS_ENDPOINT_URL",
        )
    } else if has(&["timeout", "timed out"]) {
        Some("S3 did not answer in time: check the network, then run again")
    } else if has(&[
        "region",
        "authorizationheadermalformed",
        "permanentredirect",
    ]) {
        Some("the bucket is in another region: set AWS_REGION to the bucket's region")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_causes_get_their_fix() {
        for (said, fix) in [
            (
                "dispatch failure: io error: client error (Connect): dns error: failed to lookup address information",
                "did not resolve",
            ),
            (
                "failed to construct request: no credentials in the credential chain",
                "no AWS credentials",
            ),
            (
                "dispatch failure: other: the credential provider was not enabled: no providers in chain provided credentials",
                "no AWS credentials",
            ),
            (
                "ExpiredToken: The provided token has expired.",
                "session expired",
            ),
            (
                "AccessDenied: User is not authorized to perform: kms:Decrypt",
                "kms:Decrypt",
            ),
            (
                "InvalidObjectState: The operation is not valid for the object's storage class",
                "archived",
            ),
            (
                "PermanentRedirect: The bucket you are attempting to access must be addressed using the specified endpoint",
                "region",
            ),
        ] {
            let got = fix_for(said).unwrap_or_else(|| panic!("no fix for {said}"));
            assert!(got.contains(fix), "{said}: {got}");
        }
        assert_eq!(fix_for("SlowDown: Please reduce your request rate"), None);
    }

    #[test]
    fn the_cause_chain_is_said_once_without_debug_output() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(inner);
        let line = cause_chain(&outer);
        assert_eq!(line, "connection refused");
        assert!(!line.contains("Custom {"));
    }
}
