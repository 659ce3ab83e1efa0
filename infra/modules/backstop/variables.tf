variable "name" {
  description = "Prefix for every resource name (bucket names get the account id appended)."
  type        = string
  default     = "backstop"
  validation {
    # The bucket is "<name>-<account id>-<region>": 63 characters at most, lower case.
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,33}[a-z0-9])?$", var.name))
    error_message = "name must be 1 to 35 lower-case letters, digits and hyphens, starting and ending with a letter or digit: the bucket is named <name>-<account id>-<region>, which S3 limits to 63 such characters."
  }
}

variable "databases" {
  description = "Databases to back up, by database id: where each connection comes from (a Secrets Manager secret in the RDS JSON shape or holding a URL, or an SSM SecureString holding a URL), its TLS settings, the Secrets Manager secret of its PgBouncer admin console when it has one (pooler_secret_arn: the monitor reports the pools), where its scheduled backups run: runner = \"lambda\" (the backup function, which hands a backup that will not fit to the container task when `fargate` is enabled) or \"fargate\" (the schedule starts the container task directly), and its recovery objectives (objectives: rpo, rto, restore_test_every, each a duration such as 30m, 4h or 30d; any left out come from the module-wide `objectives`, else from the schedules, as that input says)."
  type = map(object({
    secret_arn    = optional(string)
    ssm_parameter = optional(string)
    sslmode       = optional(string, "verify-full")
    sslrootcert   = optional(string)
    runner        = optional(string, "lambda")
    # PgBouncer's admin console in front of it (a secret holding a URL to the `pgbouncer`
    # database, for a user in stats_users): the monitor reports its pools.
    pooler_secret_arn = optional(string)
    # The recovery objectives the monitor judges this database against; see var.objectives.
    objectives = optional(object({
      rpo                = optional(string)
      rto                = optional(string)
      restore_test_every = optional(string)
    }), {})
  }))
  validation {
    condition     = length(var.databases) > 0 && alltrue([for id, db in var.databases : (db.secret_arn == null) != (db.ssm_parameter == null)])
    error_message = "Name at least one database, each with exactly one of secret_arn or ssm_parameter."
  }
  validation {
    condition     = alltrue([for id, db in var.databases : contains(["disable", "prefer", "require", "verify-ca", "verify-full"], db.sslmode)])
    error_message = "Each database's sslmode must be one of disable, prefer, require, verify-ca, verify-full (as libpq spells them)."
  }
  validation {
    condition     = alltrue([for id, db in var.databases : contains(["lambda", "fargate"], db.runner)])
    error_message = "Each database's runner must be lambda or fargate."
  }
  validation {
    condition     = var.fargate.enabled || alltrue([for id, db in var.databases : db.runner != "fargate"])
    error_message = "A database with runner = \"fargate\" needs fargate.enabled (and fargate.image_tag)."
  }
  validation {
    # As var.objectives: whole numbers with a unit, s m h d w (m is minutes), not all zero.
    condition = alltrue(flatten([for id, db in var.databases : [
      for field, text in db.objectives :
      can(regex("^[0-9]+[smhdw]( ?[0-9]+[smhdw])*$", text)) && can(regex("[1-9]", text)) if text != null
    ]]))
    error_message = "Each database's objectives (rpo, rto, restore_test_every) must be durations such as 30m, 90m, 4h, 4h 30m, 7d or 30d: whole numbers, each followed by s, m (minutes), h, d or w, not zero. Not one: ${join(", ", flatten([for id, db in var.databases : [for field, text in db.objectives : "${id}.objectives.${field} = \"${text}\"" if text != null && !(can(regex("^[0-9]+[smhdw]( ?[0-9]+[smhdw])*$", text)) && can(regex("[1-9]", text)))]]))}."
  }
  validation {
    # At most a hundred years (100 × 366 days), as the monitor reads a duration.
    condition = alltrue(flatten([for id, db in var.databases : [
      for field, text in db.objectives : try(sum([for part in regexall("([0-9]+) ?([smhdw])", text) : tonumber(part[0]) * { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }[part[1]]]), 0) <= 100 * 366 * 86400 if text != null
    ]]))
    error_message = "Each database's objectives (rpo, rto, restore_test_every) must be at most a hundred years (36600d), the longest the monitor reads. Not one: ${join(", ", flatten([for id, db in var.databases : [for field, text in db.objectives : "${id}.objectives.${field} = \"${text}\"" if text != null && try(sum([for part in regexall("([0-9]+) ?([smhdw])", text) : tonumber(part[0]) * { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }[part[1]]]), 0) > 100 * 366 * 86400]]))}."
  }
}

variable "fargate" {
  description = "The container task for backups too big for one Lambda invocation (15 minutes): the image `make image` builds, pushed to the module's ECR repository under image_tag, run on ECS Fargate (arm64) with cpu/memory as Fargate sizes them. The backup function dispatches to it a backup whose estimate exceeds its time left; databases with runner = \"fargate\" are scheduled on it directly. subnet_ids and security_group_ids default to vpc_subnet_ids and vpc_security_group_ids; spot runs on Fargate Spot."
  type = object({
    enabled            = bool
    image_tag          = optional(string)
    cpu                = optional(number, 2048)
    memory             = optional(number, 8192)
    spot               = optional(bool, false)
    subnet_ids         = optional(list(string))
    security_group_ids = optional(list(string))
    assign_public_ip   = optional(bool, false)
    start_seconds      = optional(number, 600)
  })
  default = { enabled = false }
  validation {
    condition     = !var.fargate.enabled || (var.fargate.image_tag != null && var.fargate.image_tag != "")
    error_message = "fargate.enabled needs fargate.image_tag: the tag the image was pushed to the module's ECR repository under (`skopeo copy oci-archive:target/image/backstop-arm64.oci.tar docker://<repository_url>:<tag>`)."
  }
  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.fargate.cpu) && var.fargate.memory >= 512 && var.fargate.memory <= 122880
    error_message = "fargate.cpu must be a Fargate size (256, 512, 1024, 2048, 4096, 8192 or 16384 CPU units) and fargate.memory 512 to 122880 MiB."
  }
  validation {
    condition     = !var.fargate.enabled || length(var.fargate.subnet_ids != null ? var.fargate.subnet_ids : var.vpc_subnet_ids) > 0
    error_message = "fargate.enabled needs subnets for the task: fargate.subnet_ids, or vpc_subnet_ids (private subnets with a route to S3 and the databases)."
  }
}

variable "secret_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt the database, scratch, Slack, identity or chunk key secrets (and SecureString parameters): the functions that read them get kms:Decrypt on these keys, through Secrets Manager and SSM only. Secrets under the AWS-managed key need nothing here."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for arn in var.secret_kms_key_arns : startswith(arn, "arn:")])
    error_message = "secret_kms_key_arns takes key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "lambda_artifacts" {
  description = "Where the functions' zips come from: a release in S3 (`s3_bucket` with `s3_prefix`, the folder `make release` uploads, holding lambda/<architecture>/<function>.zip; or `s3_objects`, function => { key, version } for zips laid out otherwise), or a local folder (`dir`, holding <function>/bootstrap.zip as `make build` leaves them in target/lambda). From S3, each zip's SHA-256 checksum (set by `make release`'s upload) updates a function when its zip changes."
  type = object({
    dir        = optional(string)
    s3_bucket  = optional(string)
    s3_prefix  = optional(string)
    s3_objects = optional(map(object({ key = string, version = optional(string) })))
  })
  validation {
    condition = (
      (var.lambda_artifacts.dir != null ? 1 : 0) + (var.lambda_artifacts.s3_bucket != null ? 1 : 0) == 1
      && (var.lambda_artifacts.s3_bucket == null || (var.lambda_artifacts.s3_prefix != null) != (var.lambda_artifacts.s3_objects != null))
      && (var.lambda_artifacts.s3_bucket != null || (var.lambda_artifacts.s3_prefix == null && var.lambda_artifacts.s3_objects == null))
    )
    error_message = "lambda_artifacts takes either dir (a folder of <function>/bootstrap.zip) or s3_bucket with exactly one of s3_prefix (a release folder `make release` uploaded) or s3_objects (function => { key, version })."
  }
  validation {
    condition     = var.lambda_artifacts.s3_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.lambda_artifacts.s3_bucket))
    error_message = "lambda_artifacts.s3_bucket must be an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens), not an s3:// URI."
  }
  validation {
    condition     = var.lambda_artifacts.s3_prefix == null || !can(regex("^(/|s3:)|/$", var.lambda_artifacts.s3_prefix))
    error_message = "lambda_artifacts.s3_prefix is a key prefix inside the bucket, without a leading or trailing slash (e.g. releases/backstop-0.1.0)."
  }
  validation {
    condition = var.lambda_artifacts.s3_objects == null ? true : alltrue([
      for name in ["backup", "stream", "verify", "monitor", "retention", "notify-slack"] :
      contains(keys(var.lambda_artifacts.s3_objects), name) if name != "stream" || var.point_in_time_recovery.enabled
    ])
    error_message = "lambda_artifacts.s3_objects needs an object for each function: backup, verify, monitor, retention, notify-slack, and stream with point_in_time_recovery."
  }
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
  description = "Per-function overrides of memory (MB), timeout (s) and reserved concurrency; any left out keep their defaults. Backup concurrency is how many databases are backed up at once (one per database at most, through its lease)."
  type = object({
    backup       = optional(object({ memory = optional(number, 2048), timeout = optional(number, 900), concurrency = optional(number, 4) }), {})
    stream       = optional(object({ memory = optional(number, 1024), timeout = optional(number, 900), concurrency = optional(number, 4) }), {})
    verify       = optional(object({ memory = optional(number, 2048), timeout = optional(number, 900), concurrency = optional(number, 2) }), {})
    monitor      = optional(object({ memory = optional(number, 256), timeout = optional(number, 120), concurrency = optional(number, 5) }), {})
    retention    = optional(object({ memory = optional(number, 256), timeout = optional(number, 300), concurrency = optional(number, 2) }), {})
    notify-slack = optional(object({ memory = optional(number, 128), timeout = optional(number, 60), concurrency = optional(number, 5) }), {})
  })
  default = {}
  validation {
    condition = alltrue([for name, f in var.functions :
      f.memory >= 128 && f.memory <= 10240 && f.timeout >= 1 && f.timeout <= 900 && f.concurrency >= 1
    ])
    error_message = "Each function's memory must be 128 to 10240 MB, its timeout 1 to 900 s, and its concurrency at least 1."
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
  validation {
    condition     = alltrue([for address in var.alert_emails : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", address))])
    error_message = "alert_emails takes e-mail addresses (name@example.com)."
  }
}

variable "slack" {
  description = "The Slack notifier: subscribed to the alert topic when enabled, reading the incoming-webhook URL from a Secrets Manager secret."
  type = object({
    enabled            = bool
    webhook_secret_arn = optional(string)
  })
  default = { enabled = false }
  validation {
    condition     = !var.slack.enabled || var.slack.webhook_secret_arn != null
    error_message = "slack.enabled needs slack.webhook_secret_arn: the Secrets Manager secret holding the webhook URL."
  }
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
  description = "Days in S3 Standard before Glacier, per backstop-tier tag: { glacier_after_days = N }. Nothing expires by lifecycle: retention alone deletes backups, so a set it keeps (the newest, the newest verified) never reaches an expiry date."
  type        = map(map(number))
  default = {
    daily   = { glacier_after_days = 30 }
    weekly  = { glacier_after_days = 60 }
    monthly = { glacier_after_days = 90 }
  }
  validation {
    condition     = alltrue([for tier, t in var.tiers : !contains(keys(t), "expire_after_days")])
    error_message = "tiers.*.expire_after_days is no longer accepted: lifecycle expiry could delete the last good backup when backups stop; retention (retention_policy) decides what is deleted."
  }
  validation {
    condition     = alltrue([for tier, t in var.tiers : contains(["daily", "weekly", "monthly"], tier)])
    error_message = "tiers takes daily, weekly and monthly: the values of the backstop-tier tag."
  }
  validation {
    condition     = alltrue([for tier, t in var.tiers : length(t) == 1 && lookup(t, "glacier_after_days", 0) >= 1])
    error_message = "Each tier is { glacier_after_days = N } with N >= 1: days in S3 Standard before Glacier."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object's old version is kept."
  type        = number
  default     = 30
  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of days, at least 1."
  }
}

variable "object_lock" {
  description = "S3 Object Lock on the backup bucket (set at creation only): GOVERNANCE or COMPLIANCE, with a default retention in days. Null: off."
  type = object({
    mode = string
    days = number
  })
  default = null
  validation {
    condition     = var.object_lock == null ? true : contains(["GOVERNANCE", "COMPLIANCE"], var.object_lock.mode) && var.object_lock.days >= 1
    error_message = "object_lock.mode must be GOVERNANCE or COMPLIANCE, and object_lock.days at least 1."
  }
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
  validation {
    condition = alltrue([for job, expression in var.schedules :
      can(regex("^(rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)|cron\\(([^ ]+ ){5}[^ ]+\\))$", expression))
    ])
    error_message = "Each schedule must be an EventBridge Scheduler expression: rate(1 hour), rate(6 hours) (minute/minutes, hour/hours, day/days as the number says), or cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 3 * * ? *)."
  }
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
  validation {
    condition = alltrue([for rule, n in var.retention_policy : n >= 0 && floor(n) == n]) && (
      var.retention_policy.max_deletions >= 1
    )
    error_message = "retention_policy's keep counts must be whole numbers, 0 or more, and max_deletions at least 1."
  }
}

variable "restore_verification" {
  description = "The weekly test restore: scheduled when enabled, into scratch databases on the server a Secrets Manager secret connects to (RDS JSON shape or URL)."
  type = object({
    enabled            = bool
    scratch_secret_arn = optional(string)
  })
  default = { enabled = false }
  validation {
    condition     = !var.restore_verification.enabled || var.restore_verification.scratch_secret_arn != null
    error_message = "restore_verification.enabled needs restore_verification.scratch_secret_arn: a secret connecting to a server where scratch databases may be created."
  }
  validation {
    condition = var.restore_verification.scratch_secret_arn == null ? true : !contains(
      [for db in values(var.databases) : db.secret_arn if db.secret_arn != null], var.restore_verification.scratch_secret_arn
    )
    error_message = "restore_verification.scratch_secret_arn is one of the databases' own secrets: the test restore creates and drops scratch databases there. Give it a secret for a separate, disposable server."
  }
}

variable "point_in_time_recovery" {
  description = "A change-stream drain per database on its own schedule (a logical-decoding slot read through SQL; needs wal_level = logical and a role with REPLICATION), so a restore can stop at any moment between backups. The slot is dropped, and a new stream started with a new base backup, once it holds back max_slot_wal_mib of WAL; a warning goes out at warn_slot_wal_mib (default half of that); an alarm fires when the newest recovery point is older than alarm_after_minutes. Retention keeps the change segments that reach back keep_days (from the oldest kept backup of that window)."
  type = object({
    enabled             = optional(bool, false)
    schedule            = optional(string, "rate(5 minutes)")
    max_slot_wal_mib    = optional(number, 10240)
    warn_slot_wal_mib   = optional(number)
    alarm_after_minutes = optional(number, 30)
    keep_days           = optional(number, 7)
  })
  default = {}
  validation {
    condition     = can(regex("^(rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)|cron\\(([^ ]+ ){5}[^ ]+\\))$", var.point_in_time_recovery.schedule))
    error_message = "point_in_time_recovery.schedule must be an EventBridge Scheduler expression, e.g. rate(5 minutes) or cron(*/5 * * * ? *)."
  }
  validation {
    condition     = var.point_in_time_recovery.max_slot_wal_mib >= 1 && var.point_in_time_recovery.alarm_after_minutes >= 5 && var.point_in_time_recovery.keep_days >= 1
    error_message = "point_in_time_recovery.max_slot_wal_mib and keep_days must be at least 1, and alarm_after_minutes at least 5."
  }
}

variable "objectives" {
  description = "Recovery objectives for every database, each a duration such as 30m, 4h or 30d (whole numbers with s, m for minutes, h, d or w; at most a hundred years); a database's own objectives override them field by field. rpo: the most data, as time, a restore may lose (default: two and a half intervals of the job that makes recovery points, the change stream's drain with point_in_time_recovery, else the backup schedule, so one failed run does not miss it: rate(6 hours) gives 15h, rate(5 minutes) 12m 30s). rto: the longest a restore may take until the database is ready (default 4h), judged against the newest passed test restore. restore_test_every: how old the newest passed test restore may be (default: two and a half intervals of the restore_verification schedule when it is enabled, rate(7 days) giving 17d 12h; else not judged). The monitor judges each hourly (met; at risk once the run that was due has not landed, an interval and a half after the newest; missed; an alert on each change), publishes RpoSeconds, RtoSeconds, RestoreTestAgeSeconds with their objectives and RpoMet, RtoMet, RestoreTestMet, and keeps a sample per run under _backstop/objectives/ for `backstop report`. A cron() schedule is read as its interval when it is every N minutes, every N hours, daily, weekly or monthly, and as a day otherwise (plan warns where that sets a default)."
  type = object({
    rpo                = optional(string)
    rto                = optional(string)
    restore_test_every = optional(string)
  })
  default = {}
  validation {
    condition = alltrue([
      for field, text in var.objectives :
      can(regex("^[0-9]+[smhdw]( ?[0-9]+[smhdw])*$", text)) && can(regex("[1-9]", text)) if text != null
    ])
    error_message = "objectives (rpo, rto, restore_test_every) must be durations such as 30m, 90m, 4h, 4h 30m, 7d or 30d: whole numbers, each followed by s, m (minutes), h, d or w, not zero. Not one: ${join(", ", [for field, text in var.objectives : "objectives.${field} = \"${text}\"" if text != null && !(can(regex("^[0-9]+[smhdw]( ?[0-9]+[smhdw])*$", text)) && can(regex("[1-9]", text)))])}."
  }
  validation {
    # At most a hundred years (100 × 366 days), as the monitor reads a duration.
    condition = alltrue([
      for field, text in var.objectives : try(sum([for part in regexall("([0-9]+) ?([smhdw])", text) : tonumber(part[0]) * { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }[part[1]]]), 0) <= 100 * 366 * 86400 if text != null
    ])
    error_message = "objectives (rpo, rto, restore_test_every) must be at most a hundred years (36600d), the longest the monitor reads. Not one: ${join(", ", [for field, text in var.objectives : "objectives.${field} = \"${text}\"" if text != null && try(sum([for part in regexall("([0-9]+) ?([smhdw])", text) : tonumber(part[0]) * { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }[part[1]]]), 0) > 100 * 366 * 86400])}."
  }
}

variable "recipients" {
  description = "age recipients (age1...) every backup is encrypted to, zstd then age, as it streams. The backup function holds only these public keys: it cannot read what it wrote. Empty: backups are not encrypted."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for r in var.recipients : can(regex("^age1[02-9ac-hj-np-z]{58}$", r))])
    error_message = "recipients takes age X25519 recipients: age1 and 58 more characters, as `backstop keygen` prints."
  }
}

variable "require_encryption" {
  description = "Refuse to take a backup that is not encrypted (BACKSTOP_REQUIRE_ENCRYPTION): with recipients empty, the backup function refuses to start, naming the setting, and its error alarm fires."
  type        = bool
  default     = false
}

variable "verify_identity_secret_arn" {
  description = "Secrets Manager secret holding the age identity (AGE-SECRET-KEY-1...) that reads encrypted backups, for the verify function's deep and restore levels. Only the verify role may read it. Null: encrypted backups are verified at the manifest level only."
  type        = string
  default     = null
  validation {
    condition     = var.verify_identity_secret_arn == null || can(regex("^arn:[^:]+:secretsmanager:", var.verify_identity_secret_arn))
    error_message = "verify_identity_secret_arn takes a Secrets Manager secret ARN."
  }
}

variable "incremental_backups" {
  description = "Backups store table data as shared chunks (BACKSTOP_INCREMENTAL, for the backup and stream functions and the backup task): cut where the content says, each stored once per database, so a backup stores only the chunks that changed since the database's newest backup and names the others. On by default: new deployments store only what changed (an existing one, upgraded, stores its next backup whole, then only what changed). Encrypted backups (recipients) need chunk_key_secret_arn for this, else they store whole parts. False: every backup is stored whole."
  type        = bool
  default     = true
}

variable "chunk_key_secret_arn" {
  description = "Secrets Manager secret holding the chunk key (64 hexadecimal digits: `openssl rand -hex 32`) that encrypted incremental backups name their shared chunks with (BACKSTOP_CHUNK_KEY_SECRET); only the backup and stream roles (and the backup task's) may read it. Needed only with recipients: a plaintext database's key is kept in the bucket. Keep it: a new key makes the next backup store every chunk again. Null with recipients and incremental_backups: encrypted backups store whole parts (plan warns)."
  type        = string
  default     = null
  validation {
    condition     = var.chunk_key_secret_arn == null || can(regex("^arn:[^:]+:secretsmanager:", var.chunk_key_secret_arn))
    error_message = "chunk_key_secret_arn takes a Secrets Manager secret ARN."
  }
}

variable "shared_chunks_instant_retrieval_after_days" {
  description = "Days shared chunks (backstop-tier = shared) stay in S3 Standard before moving to Glacier Instant Retrieval, which is read at once (never Glacier Flexible Retrieval: the newest backup may name any chunk). Instant Retrieval keeps a GB for less but charges for each GB read and bills 90 days at least, and deep verification reads every chunk the newest backup names: it pays only for chunks read less often than about every 50 days. Nothing expires by lifecycle: retention deletes a chunk once no kept backup names it. Null (the default): chunks stay in Standard."
  type        = number
  default     = null
  validation {
    condition     = var.shared_chunks_instant_retrieval_after_days == null ? true : var.shared_chunks_instant_retrieval_after_days >= 1 && floor(var.shared_chunks_instant_retrieval_after_days) == var.shared_chunks_instant_retrieval_after_days
    error_message = "shared_chunks_instant_retrieval_after_days must be a whole number of days, at least 1, or null (chunks stay in S3 Standard)."
  }
}

variable "schedule_window_minutes" {
  description = "Scheduler's flexible window: each database's jobs start at a random moment within it, so many databases on one schedule do not all start at once."
  type        = number
  default     = 15
  validation {
    condition     = var.schedule_window_minutes >= 1 && var.schedule_window_minutes <= 1440
    error_message = "schedule_window_minutes must be 1 to 1440."
  }
}

variable "freshness_hours" {
  description = "Backup age (hours) from which freshness is a warning, and critical."
  type = object({
    warning  = number
    critical = number
  })
  default = { warning = 6, critical = 24 }
  validation {
    condition     = var.freshness_hours.warning > 0 && var.freshness_hours.critical > var.freshness_hours.warning
    error_message = "freshness_hours.warning must be above 0 and freshness_hours.critical above it: a backup is late before it is critically late."
  }
}

variable "log_retention_days" {
  description = "Days the functions' logs are kept: one of the values CloudWatch Logs takes."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs takes: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "iam_path" {
  description = "Path of every IAM role the module makes (an organisation's convention, e.g. /backstop/)."
  type        = string
  default     = "/"
  validation {
    condition     = can(regex("^/([A-Za-z0-9+=,.@_-]+/)*$", var.iam_path)) && length(var.iam_path) <= 512
    error_message = "iam_path must start and end with / (e.g. /backstop/), with letters, digits and +=,.@_- between."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary set on every IAM role the module makes, where an organisation requires one. Null: none."
  type        = string
  default     = null
  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:[^:]+:iam::[0-9]{12}:policy/", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn takes an IAM policy ARN (arn:aws:iam::<account>:policy/<name>)."
  }
}

variable "kms_key_arn" {
  description = "A customer-managed KMS key to use instead of the module's own, for the bucket (when the module makes it), the topic, the logs, the queues and the functions' settings. Its key policy must let CloudWatch Logs, SNS, CloudWatch, EventBridge and EventBridge Scheduler use it: the kms_key_policy_json output holds those statements. Null: the module makes a key."
  type        = string
  default     = null
  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[^:]+:kms:[^:]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn takes a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias or a key id."
  }
}

variable "bucket_name" {
  description = "An existing bucket to keep the backups in (under backups/) instead of the module's own. The module changes none of its settings: it must have versioning on, block public access, and carry the bucket_policy_json output's statements (create-only writes, TLS only); lifecycle per backstop-tier tag and Object Lock are its owner's. With SSE-KMS under a customer-managed key, give that key as kms_key_arn. Null: the module makes and configures a bucket."
  type        = string
  default     = null
  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens), not an ARN or an s3:// URI."
  }
  validation {
    condition     = var.bucket_name == null || var.object_lock == null
    error_message = "object_lock applies to a bucket the module makes: Object Lock on a bucket brought with bucket_name is set by its owner."
  }
}

variable "alert_topic_arn" {
  description = "An existing SNS topic to send alerts to instead of the module's own: alarms, failed events and the functions publish to it, and alert_emails and the Slack notifier are subscribed to it. Its policy must let CloudWatch alarms publish, and its KMS key let CloudWatch use it. Null: the module makes a topic."
  type        = string
  default     = null
  validation {
    condition     = var.alert_topic_arn == null || can(regex("^arn:[^:]+:sns:[^:]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alert_topic_arn))
    error_message = "alert_topic_arn takes an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)."
  }
}
