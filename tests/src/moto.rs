//! moto's server, the S3 (and more) API on a free loopback port, once per process.
//!
//! Code under test reaches it exactly as it reaches AWS: through `AWS_ENDPOINT_URL` for
//! subprocesses ([`Moto::env`]), or an `SdkConfig` carrying the same endpoint, region and
//! credentials that `aws-config` would read from those variables ([`Moto::sdk_config`]).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};

use crate::service;

const REGION: &str = "us-east-1";
const ACCESS_KEY: &str = "backstop-test";
const SECRET_KEY: &str = "backstop-test-secret";
const START_ATTEMPTS: usize = 5;

/// The process's moto server.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The moto server of this process, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| Moto::start().unwrap_or_else(|e| panic!("{e}")))
}

impl Moto {
    /// Environment for a subprocess that should talk to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// The SDK configuration `aws-config` builds from [`Moto::env`].
    pub async fn sdk_config(&self) -> SdkConfig {
        backstop::aws::config_loader()
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                None,
                None,
                "backstop-tests",
            ))
            .load()
            .await
    }

    /// A subnet and a security group of the default VPC moto keeps (what a Fargate task's
    /// network configuration names), read through EC2's query API.
    pub async fn default_network(&self) -> (String, String) {
        async fn first(endpoint: &str, action: &str, element: &str) -> String {
            let body = reqwest::Client::new()
                .post(endpoint)
                .header(
                    "Authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20261201/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0"
                    ),
                )
                .form(&[("Action", action), ("Version", "2016-11-15")])
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .unwrap_or_else(|e| panic!("moto EC2 {action}: {e}"))
                .text()
                .await
                .unwrap();
            let open = format!("<{element}>");
            let start = body
                .find(&open)
                .unwrap_or_else(|| panic!("no {element} in moto's {action}: {body}"))
                + open.len();
            let end = start + body[start..].find('<').unwrap();
            body[start..end].to_string()
        }
        (
            first(&self.endpoint, "DescribeSubnets", "subnetId").await,
            first(&self.endpoint, "DescribeSecurityGroups", "groupId").await,
        )
    }

    /// An ECS client, through the proxy that makes moto's task answers readable
    /// ([`crate::ecs_proxy`]).
    pub async fn ecs(&self) -> aws_sdk_ecs::Client {
        let config = aws_sdk_ecs::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(&crate::ecs_proxy::ecs_proxy().endpoint)
            .build();
        aws_sdk_ecs::Client::from_conf(config)
    }

    /// An S3 client through Backstop's own factory.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        backstop::aws::s3_client(&self.sdk_config().await)
    }

    /// Creates a bucket with a unique name and returns the name.
    pub async fn new_bucket(&self, label: &str) -> String {
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(30)
            .collect();
        let bucket = format!("{label}-{}", crate::unique_suffix());
        self.s3()
            .await
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create test bucket");
        bucket
    }

    fn start() -> Result<Self, String> {
        let server = find_moto_server()?;
        for _ in 0..START_ATTEMPTS {
            let port = service::free_port();
            let mut command = Command::new(&server);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let service = service::spawn(command, libc::SIGTERM)
                .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && !service.has_exited() {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let running = service.clone();
                    service::at_exit(move || running.stop(libc::SIGTERM, Duration::from_secs(5)));
                    return Ok(Self {
                        endpoint: format!("http://127.0.0.1:{port}"),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            service.stop(libc::SIGKILL, Duration::from_secs(5));
        }
        Err(format!(
            "moto_server did not start after {START_ATTEMPTS} attempts"
        ))
    }
}

/// `BACKSTOP_MOTO_SERVER`, else the project's `.venv/bin/moto_server`, else `PATH`.
fn find_moto_server() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("BACKSTOP_MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let venv = crate::workspace_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths).map(|p| p.join("moto_server")).find(|p| p.exists())
        })
        .ok_or_else(|| {
            "moto_server not found; run `make deps` (it installs moto into .venv) or set BACKSTOP_MOTO_SERVER".into()
        })
}

/// An SNS topic with an SQS queue subscribed to it, to read published alerts back.
#[derive(Debug)]
pub struct AlertInbox {
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Moto {
    /// A new topic and its subscribed queue.
    pub async fn alert_inbox(&self, label: &str) -> AlertInbox {
        let config = self.sdk_config().await;
        let sns = aws_sdk_sns::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let name = format!("{label}-{}", crate::unique_suffix());
        let topic_arn = sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .expect("create topic")
            .topic_arn()
            .expect("topic arn")
            .to_string();
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_string();
        let queue_arn = format!("arn:aws:sqs:{REGION}:123456789012:{name}");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe queue");
        AlertInbox {
            topic_arn,
            queue_url,
            sqs,
        }
    }
}

/// One message as an SQS subscriber receives it.
#[derive(Debug, Clone)]
pub struct Received {
    pub subject: String,
    /// The message for the `sqs` protocol (Backstop sends the alert JSON there).
    pub message: String,
    /// SNS message attributes, name to value.
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl AlertInbox {
    /// Every message delivered so far (and removes them from the queue).
    pub async fn drain(&self) -> Vec<Received> {
        let mut received = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive messages");
            let messages = batch.messages();
            if messages.is_empty() {
                return received;
            }
            for message in messages {
                let envelope: serde_json::Value =
                    serde_json::from_str(message.body().unwrap_or_default()).expect("SNS envelope");
                let attributes = envelope["MessageAttributes"]
                    .as_object()
                    .map(|attributes| {
                        attributes
                            .iter()
                            .map(|(name, value)| {
                                let value = value["Value"].as_str().unwrap_or_default();
                                (name.clone(), value.to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                received.push(Received {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                    message: envelope["Message"].as_str().unwrap_or_default().to_string(),
                    attributes,
                });
                if let Some(handle) = message.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
    }
}
