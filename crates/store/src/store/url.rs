//! Parsing store URLs: `file:///absolute/path` and `s3://bucket/prefix`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::StoreError;

/// Where a store lives, as given by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local directory; created on first write if missing.
    File { root: PathBuf },
    /// An S3 bucket and an optional key prefix (no leading or trailing slash).
    S3 { bucket: String, prefix: String },
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: raw.to_string(),
            reason: reason.to_string(),
        };
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(invalid("it has no scheme"));
        };
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(
                        "a file store needs an absolute path (three slashes)",
                    ));
                }
                let path = url::Url::parse(raw)
                    .ok()
                    .and_then(|u| u.to_file_path().ok())
                    .ok_or_else(|| invalid("the path cannot be read"))?;
                let root = PathBuf::from(path.to_string_lossy().trim_end_matches('/'));
                if root.as_os_str().is_empty() {
                    return Err(invalid("the filesystem root cannot be a store"));
                }
                Ok(StoreUrl::File { root })
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if !is_valid_bucket_name(bucket) {
                    return Err(invalid(
                        "the bucket name must be 3-63 characters of a-z, 0-9, '.' and '-'",
                    ));
                }
                let prefix = prefix.trim_matches('/');
                if prefix.split('/').any(|s| s == "." || s == "..")
                    || prefix.contains("//")
                    || prefix.contains('\0')
                {
                    return Err(invalid("the prefix has an empty, '.' or '..' segment"));
                }
                Ok(StoreUrl::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                })
            }
            other => Err(StoreError::UnsupportedScheme {
                scheme: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::File { root } => write!(f, "file://{}", root.display()),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

fn is_valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_s3_urls() {
        assert_eq!(
            "file:///var/backups/".parse::<StoreUrl>().unwrap(),
            StoreUrl::File {
                root: "/var/backups".into()
            }
        );
        assert_eq!(
            "s3://my-bucket/team/prod/".parse::<StoreUrl>().unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "team/prod".into()
            }
        );
        assert_eq!(
            "s3://my-bucket".parse::<StoreUrl>().unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            "s3://my-bucket/a/b"
                .parse::<StoreUrl>()
                .unwrap()
                .to_string(),
            "s3://my-bucket/a/b"
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        let err = "gs://bucket/x".parse::<StoreUrl>().unwrap_err().to_string();
        assert!(err.contains("`gs:` is not supported"), "{err}");
        let err = "file://relative/path"
            .parse::<StoreUrl>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("absolute path"), "{err}");
        let err = "s3://Bad_Bucket/x"
            .parse::<StoreUrl>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("bucket name"), "{err}");
        let err = "/just/a/path".parse::<StoreUrl>().unwrap_err().to_string();
        assert!(err.contains("no scheme"), "{err}");
        assert!("s3://bucket/a/../b".parse::<StoreUrl>().is_err());
        assert!("file:///".parse::<StoreUrl>().is_err());
    }
}
