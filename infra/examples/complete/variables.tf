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

variable "lambda_artifacts" {
  description = "Where the function zips come from: `{ dir = ... }` after `make build`, or `{ s3_bucket = ..., s3_prefix = \"releases/backstop-<version>\" }` for a release `make release` uploaded."
  type = object({
    dir       = optional(string)
    s3_bucket = optional(string)
    s3_prefix = optional(string)
  })
  default = { dir = "../../../target/lambda" }
}

variable "slack" {
  description = "Alerts to Slack too: makes the webhook secret (put the incoming-webhook URL in by hand) and the notifier."
  type        = bool
  default     = false
}

variable "alert_emails" {
  description = "Who gets alert emails (each confirms by email)."
  type        = list(string)
}

variable "backup_recipients" {
  description = "age recipients (age1...) backups are encrypted to; the matching identity goes into the verify identity secret. Empty: not encrypted."
  type        = list(string)
  default     = []
}

variable "task_subnet_ids" {
  description = "Private subnets (with a route to S3 and the databases) for the container task that takes the backups too big for Lambda."
  type        = list(string)
}

variable "image_tag" {
  description = "The tag the container image (`make release`'s image/backstop-arm64.oci.tar) was pushed under to the module's ECR repository (output container_task.repository_url), e.g. the release version."
  type        = string
}
