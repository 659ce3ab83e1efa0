variable "name" {
  description = "Prefix for every resource name (bucket names get the account id appended)."
  type        = string
  default     = "backstop"
}

variable "databases" {
  description = "Databases to back up, by database id: where each connection comes from (a Secrets Manager secret in the RDS JSON shape or holding a URL, or an SSM SecureString holding a URL) and its TLS settings."
  type = map(object({
    secret_arn    = optional(string)
    ssm_parameter = optional(string)
    sslmode       = optional(string, "verify-full")
    sslrootcert   = optional(string)
  }))
  validation {
    condition     = length(var.databases) > 0 && alltrue([for id, db in var.databases : (db.secret_arn == null) != (db.ssm_parameter == null)])
    error_message = "Name at least one database, each with exactly one of secret_arn or ssm_parameter."
  }
}

variable "lambda_artifacts_dir" {
  description = "Folder holding <function>/bootstrap.zip as `make build` leaves them (target/lambda)."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture the zips were built for."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "functions" {
  description = "Memory (MB) and timeout (s) per function."
  type = map(object({
    memory  = number
    timeout = number
  }))
  default = {
    backup       = { memory = 2048, timeout = 900 }
    verify       = { memory = 2048, timeout = 900 }
    monitor      = { memory = 256, timeout = 120 }
    retention    = { memory = 256, timeout = 300 }
    notify-slack = { memory = 128, timeout = 60 }
  }
}

variable "vpc_subnet_ids" {
  description = "Subnets for the functions that reach the databases (usually private). Empty: no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups for those functions; they must allow egress to the databases and to S3/SNS/CloudWatch (endpoints or NAT)."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "Addresses subscribed to the alert topic (each confirms by email)."
  type        = list(string)
  default     = []
}

variable "slack_enabled" {
  description = "Subscribe the Slack notifier to the alert topic (needs slack_webhook_secret_arn)."
  type        = bool
  default     = false
}

variable "slack_webhook_secret_arn" {
  description = "Secrets Manager secret holding the Slack incoming-webhook URL."
  type        = string
  default     = null
}

variable "sse_algorithm" {
  description = "Bucket encryption: aws:kms with the module's customer-managed key, or AES256."
  type        = string
  default     = "aws:kms"
  validation {
    condition     = contains(["aws:kms", "AES256"], var.sse_algorithm)
    error_message = "sse_algorithm must be aws:kms or AES256."
  }
}

variable "tiers" {
  description = "Lifecycle per backstop-tier tag: days in S3 Standard before Glacier, and days before expiry."
  type = map(object({
    glacier_after_days = number
    expire_after_days  = number
  }))
  default = {
    daily   = { glacier_after_days = 30, expire_after_days = 90 }
    weekly  = { glacier_after_days = 60, expire_after_days = 180 }
    monthly = { glacier_after_days = 90, expire_after_days = 365 }
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object's old version is kept."
  type        = number
  default     = 30
}

variable "object_lock" {
  description = "S3 Object Lock on the backup bucket (set at creation only): GOVERNANCE or COMPLIANCE, with a default retention in days. Null: off."
  type = object({
    mode = string
    days = number
  })
  default = null
}

variable "schedules" {
  description = "EventBridge Scheduler expressions per job."
  type = object({
    backup         = optional(string, "rate(6 hours)")
    verify_deep    = optional(string, "rate(1 day)")
    verify_restore = optional(string, "rate(7 days)")
    monitor        = optional(string, "rate(1 hour)")
    retention      = optional(string, "rate(1 day)")
  })
  default = {}
}

variable "retention_policy" {
  description = "Grandfather-father-son policy of the retention function."
  type = object({
    keep_last     = optional(number, 0)
    keep_daily    = optional(number, 7)
    keep_weekly   = optional(number, 4)
    keep_monthly  = optional(number, 12)
    keep_yearly   = optional(number, 0)
    max_deletions = optional(number, 50)
  })
  default = {}
}

variable "restore_verification_enabled" {
  description = "Schedule the weekly test restore (needs scratch_secret_arn)."
  type        = bool
  default     = false
}

variable "scratch_secret_arn" {
  description = "Secret with a connection (RDS JSON shape or URL) to a server where restore verification may create scratch databases."
  type        = string
  default     = null
}

variable "freshness_hours" {
  description = "Backup age (hours) from which freshness is a warning, and critical."
  type = object({
    warning  = number
    critical = number
  })
  default = { warning = 6, critical = 24 }
}

variable "log_retention_days" {
  description = "Days the functions' logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
