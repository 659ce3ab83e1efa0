################################################################################
# The functions, their logs and their failure destinations
################################################################################

locals {
  common_environment = {
    BACKSTOP_STORE                = local.store_url
    BACKSTOP_DATABASES            = local.databases_json
    BACKSTOP_ALERT_TOPIC_ARN      = local.alert_topic_arn
    BACKSTOP_WARNING_AFTER_HOURS  = tostring(var.freshness_hours.warning)
    BACKSTOP_CRITICAL_AFTER_HOURS = tostring(var.freshness_hours.critical)
  }
  encryption_environment = merge(length(var.recipients) > 0 ? {
    BACKSTOP_RECIPIENTS = join(",", var.recipients)
    } : {}, var.require_encryption ? {
    BACKSTOP_REQUIRE_ENCRYPTION = "true"
  } : {})
  # Shared chunks, for the writers of backups (the backup task takes the backup function's).
  incremental_environment = merge({
    BACKSTOP_INCREMENTAL = tostring(var.incremental_backups)
    }, local.chunk_key_secret_arn == null ? {} : {
    BACKSTOP_CHUNK_KEY_SECRET = local.chunk_key_secret_arn
  })
  environment = {
    backup = merge(local.common_environment, local.encryption_environment, local.incremental_environment)
    # Drains the change stream, and takes the base backups it needs.
    stream = merge(local.common_environment, local.encryption_environment, local.incremental_environment, {
      BACKSTOP_STREAM_MAX_SLOT_WAL_MIB = tostring(var.point_in_time_recovery.max_slot_wal_mib)
      }, var.point_in_time_recovery.warn_slot_wal_mib == null ? {} : {
      BACKSTOP_STREAM_WARN_SLOT_WAL_MIB = tostring(var.point_in_time_recovery.warn_slot_wal_mib)
    })
    verify = merge(local.common_environment, var.restore_verification.enabled ? {
      BACKSTOP_SCRATCH = jsonencode({ secret = var.restore_verification.scratch_secret_arn })
      } : {}, var.verify_identity_secret_arn != null ? {
      BACKSTOP_VERIFY_IDENTITY_SECRET = var.verify_identity_secret_arn
    } : {})
    # The recovery objectives it judges (objectives.tf).
    monitor = merge(local.common_environment, {
      BACKSTOP_OBJECTIVES = local.objectives_json
    })
    retention = merge(local.common_environment, {
      BACKSTOP_KEEP_LAST     = tostring(var.retention_policy.keep_last)
      BACKSTOP_KEEP_DAILY    = tostring(var.retention_policy.keep_daily)
      BACKSTOP_KEEP_WEEKLY   = tostring(var.retention_policy.keep_weekly)
      BACKSTOP_KEEP_MONTHLY  = tostring(var.retention_policy.keep_monthly)
      BACKSTOP_KEEP_YEARLY   = tostring(var.retention_policy.keep_yearly)
      BACKSTOP_MAX_DELETIONS = tostring(var.retention_policy.max_deletions)
      # How far back point-in-time recovery reaches: older change segments go.
      BACKSTOP_KEEP_STREAM_DAYS = tostring(var.point_in_time_recovery.keep_days)
    })
    notify-slack = var.slack.enabled ? {
      SLACK_WEBHOOK_SECRET = var.slack.webhook_secret_arn
    } : {}
  }
  # The functions that connect to databases run in the VPC when subnets are given.
  in_vpc = toset(["backup", "stream", "verify", "monitor"])
  # Where a function's failed asynchronous events go. The notifier is fed by the alert topic,
  # so its failures must not go back into it (a Slack outage would loop): they go to a queue
  # with an alarm on its depth. The others' failures are alerts.
  failure_destination = {
    for name in keys(local.functions) : name => (
      name == "notify-slack" ? aws_sqs_queue.notifier_dead_letters.arn : local.alert_topic_arn
    )
  }
}

# An encrypted backup names its shared chunks with a key it is given, never one kept beside
# them in the bucket: without the secret it stores whole parts. A warning at plan, not an
# error: the backups are still taken, whole.
check "encrypted_incremental_backups_have_a_chunk_key" {
  assert {
    condition     = length(var.recipients) == 0 || !var.incremental_backups || var.chunk_key_secret_arn != null
    error_message = "recipients are set and incremental_backups is on, but chunk_key_secret_arn is not given: encrypted backups then store whole parts, not shared chunks, so each stores all its table data again. Make a Secrets Manager secret holding 64 hexadecimal digits (`aws secretsmanager create-secret --name backstop/chunk-key --secret-string \"$(openssl rand -hex 32)\"`) and give its ARN as chunk_key_secret_arn, or set incremental_backups = false."
  }
}

# The zips in S3 (a release `make release` uploaded, or objects named one by one), read at plan:
# a missing zip is an error before anything changes.
locals {
  artifact_from_s3 = var.lambda_artifacts.s3_bucket != null
  artifact_keys = {
    for name in keys(local.functions) : name => (
      var.lambda_artifacts.s3_objects != null
      ? try(var.lambda_artifacts.s3_objects[name].key, "")
      : "${coalesce(var.lambda_artifacts.s3_prefix, "-")}/lambda/${var.architecture}/${name}.zip"
    )
  }
}

data "aws_s3_object" "artifact" {
  for_each      = local.artifact_from_s3 ? local.artifact_keys : {}
  bucket        = var.lambda_artifacts.s3_bucket
  key           = each.value
  version_id    = try(var.lambda_artifacts.s3_objects[each.key].version, null)
  checksum_mode = "ENABLED"
}

locals {
  # The version named, else the one read (null in an unversioned bucket).
  artifact_versions = {
    for name, object in data.aws_s3_object.artifact : name => try(coalesce(
      try(var.lambda_artifacts.s3_objects[name].version, null), object.version_id
    ), null)
  }
}

resource "aws_sqs_queue" "notifier_dead_letters" {
  name                      = "${var.name}-notifier-dead-letters"
  message_retention_seconds = 1209600
  kms_master_key_id         = local.kms_key_arn
  tags                      = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:VPC placement is set per deployment through vpc_subnet_ids; retention and the Slack notifier need no database
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the deployer owns; the zips come from `make build`
  for_each          = local.functions
  function_name     = "${var.name}-${each.key}"
  description       = "Backstop ${each.key}"
  role              = aws_iam_role.this[each.key].arn
  filename          = local.artifact_from_s3 ? null : "${var.lambda_artifacts.dir}/${each.key}/bootstrap.zip"
  s3_bucket         = local.artifact_from_s3 ? var.lambda_artifacts.s3_bucket : null
  s3_key            = local.artifact_from_s3 ? local.artifact_keys[each.key] : null
  s3_object_version = local.artifact_from_s3 ? local.artifact_versions[each.key] : null
  handler           = "bootstrap"
  runtime           = "provided.al2023"
  architectures     = [var.architecture]
  memory_size       = each.value.memory
  timeout           = each.value.timeout
  kms_key_arn       = local.kms_key_arn

  # A new zip, and only a new zip, updates the function: its SHA-256 from the file, or from
  # the checksum S3 keeps for it.
  source_code_hash = local.artifact_from_s3 ? data.aws_s3_object.artifact[each.key].checksum_sha256 : filebase64sha256("${var.lambda_artifacts.dir}/${each.key}/bootstrap.zip")

  # Backups of different databases run side by side (each database's lease keeps its own
  # backups one at a time); a dozen databases on one schedule need no hour-long queue.
  reserved_concurrent_executions = each.value.concurrency

  environment {
    # The backup function alone knows the container task it dispatches to.
    variables = merge(local.environment[each.key], each.key == "backup" ? local.dispatch_environment : {}, {
      AWS_LAMBDA_LOG_FORMAT = "JSON"
    })
  }

  dynamic "vpc_config" {
    for_each = length(var.vpc_subnet_ids) > 0 && contains(local.in_vpc, each.key) ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  dead_letter_config {
    target_arn = local.failure_destination[each.key]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this[each.key].name
  }

  tags = var.tags
}

resource "aws_lambda_function_event_invoke_config" "this" {
  for_each               = local.functions
  function_name          = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts = each.key == "backup" ? 1 : 2
  # An event waiting for a free backup slot outlives a backup round (6 h, Lambda's maximum).
  maximum_event_age_in_seconds = each.key == "backup" ? 21600 : 3600

  destination_config {
    on_failure {
      destination = local.failure_destination[each.key]
    }
  }
}
