variable "database_secret_arn" {
  description = "The Secrets Manager secret connecting to the database: RDS's managed secret, or a secret holding postgresql://user:password@host:5432/dbname (the user needs pg_read_all_data; `backstop doctor` checks)."
  type        = string
}

variable "database_id" {
  description = "The database's name in the store, alerts and metrics."
  type        = string
  default     = "main"
}

variable "alert_emails" {
  description = "Who gets alert emails (each confirms by email)."
  type        = list(string)
}

variable "release_bucket" {
  description = "The bucket `make release` uploaded the release to (RELEASE_S3_URI=s3://<this>/<prefix>)."
  type        = string
}

variable "release_prefix" {
  description = "The release folder in that bucket: <prefix>/backstop-<version>."
  type        = string
}

variable "region" {
  description = "AWS region to deploy into (the release bucket's region)."
  type        = string
  default     = "eu-west-1"
}

variable "aws_endpoint" {
  description = "An AWS-compatible endpoint for every service (a local emulator such as moto). Null: AWS itself."
  type        = string
  default     = null
}
