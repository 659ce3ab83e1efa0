variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "aws_endpoint" {
  description = "An AWS-compatible endpoint for every service (a local emulator such as moto). Null: AWS itself."
  type        = string
  default     = null
}

variable "lambda_artifacts_dir" {
  description = "Where `make build` left the function zips."
  type        = string
  default     = "../../../target/lambda"
}

variable "database_url" {
  description = "Connection URL of the database to back up, stored in a Secrets Manager secret."
  type        = string
  sensitive   = true
  default     = "postgresql://backstop@db.internal:5432/app"
}

variable "pooler_url" {
  description = "URL of main's PgBouncer admin console (database pgbouncer, a user in stats_users), stored in a Secrets Manager secret."
  type        = string
  sensitive   = true
  default     = "postgresql://stats@pgbouncer.internal:6432/pgbouncer"
}

variable "slack_webhook_url" {
  description = "Slack incoming-webhook URL, stored in a Secrets Manager secret. Null: no Slack."
  type        = string
  sensitive   = true
  default     = null
}

variable "alert_emails" {
  description = "Who gets alert emails."
  type        = list(string)
  default     = ["oncall@example.com"]
}

variable "backup_recipients" {
  description = "age recipients (age1...) backups are encrypted to; the matching identity goes into the verify identity secret. Empty: not encrypted."
  type        = list(string)
  default     = []
}

variable "task_subnet_ids" {
  description = "Private subnets (with a route to S3 and the databases) for the container task that takes the backups too big for Lambda."
  type        = list(string)
  default     = ["subnet-0123456789abcdef0"]
}

variable "image_tag" {
  description = "The tag the container image (`make image`) was pushed under to the module's ECR repository (output image_repository_url)."
  type        = string
  default     = "0.1.0"
}
