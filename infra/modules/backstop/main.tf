data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  prefix     = "backups"
  store_url  = "s3://${local.bucket}/${local.prefix}"

  # The key, bucket and topic: the module's own, or the ones brought (kms_key_arn, bucket_name,
  # alert_topic_arn).
  create_key      = var.kms_key_arn == null
  create_bucket   = var.bucket_name == null
  kms_key_arn     = local.create_key ? aws_kms_key.this[0].arn : var.kms_key_arn
  bucket          = local.create_bucket ? aws_s3_bucket.this[0].id : data.aws_s3_bucket.brought[0].id
  bucket_arn      = local.create_bucket ? aws_s3_bucket.this[0].arn : data.aws_s3_bucket.brought[0].arn
  alert_topic_arn = var.alert_topic_arn == null ? aws_sns_topic.this[0].arn : var.alert_topic_arn

  # BACKSTOP_DATABASES: the functions' view of var.databases.
  databases_json = jsonencode({
    for id, db in var.databases : id => merge(
      db.secret_arn != null ? { secret = db.secret_arn } : { ssm_parameter = db.ssm_parameter },
      { sslmode = db.sslmode },
      db.sslrootcert != null ? { sslrootcert = db.sslrootcert } : {},
      db.pooler_secret_arn != null ? { pooler = { secret = db.pooler_secret_arn } } : {},
    )
  })
  secret_arns = compact(concat(
    [for db in values(var.databases) : db.secret_arn],
    [for db in values(var.databases) : db.pooler_secret_arn],
    [var.restore_verification.scratch_secret_arn],
  ))
  # The chunk key's secret, read by the writers of backups only while they store chunks.
  chunk_key_secret_arn = var.incremental_backups ? var.chunk_key_secret_arn : null
  # The fixed set of functions, each with its settings (var.functions overrides them).
  # The stream function exists only with point-in-time recovery on.
  functions = {
    for name, settings in var.functions : name => settings
    if name != "stream" || var.point_in_time_recovery.enabled
  }
  ssm_parameters = compact([for db in values(var.databases) : db.ssm_parameter])
}

################################################################################
# Encryption key for the bucket, topic, logs, secrets and function environments
################################################################################

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:in a key policy the resource is the key itself; "*" is the only valid value
  #checkov:skip=CKV_AWS_356:in a key policy the resource is the key itself; "*" is the only valid value
  #checkov:skip=CKV_AWS_109:the account root administers its own key, as AWS's default key policy does
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
  statement {
    sid       = "ServicesEncrypt"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com", "sns.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  count                   = local.create_key ? 1 : 0
  description             = "${var.name}: backups, alerts and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  count         = local.create_key ? 1 : 0
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

################################################################################
# Backup bucket and its access-log bucket
################################################################################

# A bucket brought (bucket_name): read at plan, so a wrong name fails before anything changes.
# Its settings stay its owner's; the bucket_policy_json output is what it needs.
data "aws_s3_bucket" "brought" {
  count  = local.create_bucket ? 0 : 1
  bucket = var.bucket_name
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:cross-region replication is a deployment choice (a second module in another region), not a default
  #checkov:skip=CKV2_AWS_62:nothing consumes object events; the functions run on schedules
  count               = local.create_bucket ? 1 : 0
  bucket              = "${var.name}-${local.account_id}-${local.region}"
  object_lock_enabled = var.object_lock != null
  tags                = var.tags
}

resource "aws_s3_bucket_versioning" "this" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.this[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.this[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.sse_algorithm
      kms_master_key_id = var.sse_algorithm == "aws:kms" ? local.kms_key_arn : null
    }
    bucket_key_enabled = var.sse_algorithm == "aws:kms"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  count                   = local.create_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.this[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "bucket" {
  # Backup data is written once: the roles that write it (the backup and stream functions',
  # and the backup task's) may create objects (If-None-Match: *), never replace one, so a
  # compromised writer cannot overwrite last month's parts. Only
  # its own state under _backstop/ may be overwritten. Multipart part uploads carry no
  # conditional header and are exempt (s3:ObjectCreationOperation is false for them); their
  # completion is not.
  statement {
    sid           = "BackupRoleNeverReplacesBackupData"
    effect        = "Deny"
    actions       = ["s3:PutObject"]
    not_resources = ["${local.bucket_arn}/${local.prefix}/_backstop/*"]
    principals {
      type = "AWS"
      identifiers = concat(
        [for name in ["backup", "stream"] : aws_iam_role.this[name].arn if contains(keys(local.functions), name)],
        [for job, role in aws_iam_role.task : role.arn if job == "backup"],
      )
    }
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
    condition {
      test     = "Bool"
      variable = "s3:ObjectCreationOperation"
      values   = ["true"]
    }
  }
  # The records under _backstop/ (every verification, the objectives' samples) are appended:
  # their writers (the verify function and task, the monitor) create entries, never replace one.
  statement {
    sid       = "RecordsAreAppendedNeverReplaced"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = [for record in keys(local.records) : "${local.bucket_arn}/${local.prefix}/_backstop/${record}/*"]
    principals {
      type = "AWS"
      identifiers = concat(
        [for name in distinct(values(local.records)) : aws_iam_role.this[name].arn],
        [for job, role in aws_iam_role.task : role.arn if contains(values(local.records), job)],
      )
    }
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
    condition {
      test     = "Bool"
      variable = "s3:ObjectCreationOperation"
      values   = ["true"]
    }
  }
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.bucket_arn,
      "${local.bucket_arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  count      = local.create_bucket ? 1 : 0
  bucket     = aws_s3_bucket.this[0].id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.this[0]]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.this[0].id

  dynamic "rule" {
    for_each = var.tiers
    content {
      id     = "tier-${rule.key}"
      status = "Enabled"
      filter {
        tag {
          key   = "backstop-tier"
          value = rule.key
        }
      }
      # No expiration: retention alone deletes backup sets (it never deletes the newest or
      # the newest verified one), and a retagged object can only move to Glacier sooner.
      transition {
        days          = rule.value["glacier_after_days"]
        storage_class = "GLACIER"
      }
    }
  }

  # Shared chunks (<database>/chunks/, tagged backstop-tier = shared) belong to no one set: the
  # newest set may name a chunk first stored months ago, and it must restore at once (and the
  # next backup HEADs every chunk it names again, and refuses one it cannot read at once). So
  # they move to Glacier Instant Retrieval, read in milliseconds as Standard is, and never to
  # Glacier Flexible Retrieval, whose objects need a restore of hours before any read: the
  # newest backup could not be restored or verified, nor the next one reuse its chunks, until
  # then. No expiration: retention deletes a chunk once no committed set names it.
  dynamic "rule" {
    for_each = var.shared_chunks_instant_retrieval_after_days == null ? {} : { shared = var.shared_chunks_instant_retrieval_after_days }
    content {
      id     = "tier-${rule.key}"
      status = "Enabled"
      filter {
        tag {
          key   = "backstop-tier"
          value = rule.key
        }
      }
      transition {
        days          = rule.value
        storage_class = "GLACIER_IR"
      }
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {
      prefix = ""
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this[0]]
}

resource "aws_s3_bucket_object_lock_configuration" "this" {
  count  = var.object_lock == null || !local.create_bucket ? 0 : 1
  bucket = aws_s3_bucket.this[0].id
  rule {
    default_retention {
      mode = var.object_lock.mode
      days = var.object_lock.days
    }
  }
  depends_on = [aws_s3_bucket_versioning.this[0]]
}

resource "aws_s3_bucket" "logs" {
  count = local.create_bucket ? 1 : 0
  #checkov:skip=CKV_AWS_18:this bucket receives the access logs; logging it to itself would loop
  #checkov:skip=CKV_AWS_144:access logs are not replicated; the backups they describe are the asset
  #checkov:skip=CKV2_AWS_62:nobody needs events for access-log objects
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only to SSE-S3 (AES256) buckets
  bucket = "${var.name}-logs-${local.account_id}-${local.region}"
  # Access logs are disposable (kept 30 days); the backup bucket itself is never force-destroyed.
  force_destroy = true
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "logs" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count                   = local.create_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "logs" {
  count = local.create_bucket ? 1 : 0
  statement {
    sid       = "AccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs[0].arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.logs[0].arn,
      "${aws_s3_bucket.logs[0].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  count      = local.create_bucket ? 1 : 0
  bucket     = aws_s3_bucket.logs[0].id
  policy     = data.aws_iam_policy_document.logs[0].json
  depends_on = [aws_s3_bucket_public_access_block.logs[0]]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {
      prefix = ""
    }
    expiration {
      days = 30
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.logs[0]]
}

resource "aws_s3_bucket_logging" "this" {
  count         = local.create_bucket ? 1 : 0
  bucket        = aws_s3_bucket.this[0].id
  target_bucket = aws_s3_bucket.logs[0].id
  target_prefix = "s3-access/"
  # The log bucket must allow the logging service before logging can point at it.
  depends_on = [aws_s3_bucket_policy.logs[0]]
}
