# One database, email alerts, nothing else: the functions from a release in S3 (no Rust
# toolchain needed), the database's connection from a Secrets Manager secret that already
# exists (an RDS-managed secret, or one holding a postgresql:// URL).
provider "aws" {
  region = var.region

  # Against a local emulator (the test suite plans this example against moto). Null: AWS.
  s3_use_path_style           = var.aws_endpoint != null
  skip_credentials_validation = var.aws_endpoint != null
  skip_metadata_api_check     = var.aws_endpoint != null

  dynamic "endpoints" {
    for_each = var.aws_endpoint == null ? [] : [var.aws_endpoint]
    content {
      cloudwatch     = endpoints.value
      cloudwatchlogs = endpoints.value
      iam            = endpoints.value
      kms            = endpoints.value
      lambda         = endpoints.value
      s3             = endpoints.value
      scheduler      = endpoints.value
      secretsmanager = endpoints.value
      sns            = endpoints.value
      sqs            = endpoints.value
      sts            = endpoints.value
    }
  }
}

module "backstop" {
  source = "../../modules/backstop"

  databases = {
    (var.database_id) = { secret_arn = var.database_secret_arn }
  }
  lambda_artifacts = {
    s3_bucket = var.release_bucket
    s3_prefix = var.release_prefix
  }
  alert_emails = var.alert_emails
}
