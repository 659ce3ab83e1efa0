//! Metrics to CloudWatch: namespace `Backstop`, one dimension `DatabaseId`.

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use time::OffsetDateTime;

use crate::layout::DatabaseId;

pub const NAMESPACE: &str = "Backstop";
pub const DIMENSION: &str = "DatabaseId";

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: StandardUnit,
}

impl Metric {
    pub fn count(name: &'static str, value: f64) -> Self {
        Self {
            name,
            value,
            unit: StandardUnit::Count,
        }
    }

    pub fn seconds(name: &'static str, value: f64) -> Self {
        Self {
            name,
            value,
            unit: StandardUnit::Seconds,
        }
    }

    pub fn bytes(name: &'static str, value: f64) -> Self {
        Self {
            name,
            value,
            unit: StandardUnit::Bytes,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not send metrics to CloudWatch: {0}")]
pub struct MetricsError(String);

/// Sends metrics to CloudWatch.
#[derive(Debug, Clone)]
pub struct MetricsSink {
    client: aws_sdk_cloudwatch::Client,
}

impl MetricsSink {
    pub fn new(aws: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_cloudwatch::Client::new(aws),
        }
    }

    /// Records `metrics` for `database` at `at`.
    pub async fn put(
        &self,
        database: &DatabaseId,
        at: OffsetDateTime,
        metrics: &[Metric],
    ) -> Result<(), MetricsError> {
        let dimension = Dimension::builder()
            .name(DIMENSION)
            .value(database.as_str())
            .build();
        let timestamp = aws_sdk_cloudwatch::primitives::DateTime::from_secs(at.unix_timestamp());
        let data = metrics
            .iter()
            .map(|m| {
                MetricDatum::builder()
                    .metric_name(m.name)
                    .value(m.value)
                    .unit(m.unit.clone())
                    .timestamp(timestamp)
                    .dimensions(dimension.clone())
                    .build()
            })
            .collect::<Vec<_>>();
        self.client
            .put_metric_data()
            .namespace(NAMESPACE)
            .set_metric_data(Some(data))
            .send()
            .await
            .map_err(|e| MetricsError(crate::aws::describe_error(&e)))?;
        Ok(())
    }
}
