################################################################################
# One role per function, each with only what it needs
################################################################################

locals {
  objects_arn = "${local.bucket_arn}/${local.prefix}"
  ssm_arns = [
    for name in local.ssm_parameters :
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(name, "/")}"
  ]
  # What each function may do to the backup bucket. Nobody but retention may delete; retention
  # writes only its own state and the backup lease it holds while sweeping shared chunks.
  bucket_access = {
    backup = [
      { actions = ["s3:ListBucket", "s3:ListBucketMultipartUploads"], resources = [local.bucket_arn] },
      { actions = ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], resources = ["${local.objects_arn}/*"] },
    ]
    # Segments are backup data, written once; the drain also takes base backups.
    stream = [
      { actions = ["s3:ListBucket", "s3:ListBucketMultipartUploads"], resources = [local.bucket_arn] },
      { actions = ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], resources = ["${local.objects_arn}/*"] },
    ]
    verify = [
      { actions = ["s3:ListBucket"], resources = [local.bucket_arn] },
      { actions = ["s3:GetObject"], resources = ["${local.objects_arn}/*"] },
      { actions = ["s3:PutObject", "s3:PutObjectTagging"], resources = ["${local.objects_arn}/*/*/verification/*"] },
      # Its record of every verification, appended create-only (the bucket policy).
      { actions = ["s3:PutObject"], resources = ["${local.objects_arn}/_backstop/verifications/*"] },
    ]
    # Reads the backups and the verification record; keeps its state and status page, and a
    # sample of the objectives per run, appended create-only (the bucket policy).
    monitor = [
      { actions = ["s3:ListBucket"], resources = [local.bucket_arn] },
      { actions = ["s3:GetObject"], resources = ["${local.objects_arn}/*"] },
      { actions = ["s3:PutObject"], resources = ["${local.objects_arn}/_backstop/health/*", "${local.objects_arn}/_backstop/objectives/*"] },
    ]
    # Deletes sets, change segments and the shared chunks (<database>/chunks/) no kept set names;
    # for the chunks it takes the database's backup lease, a conditional write (released by
    # overwriting), so no backup names one meanwhile.
    retention = [
      { actions = ["s3:ListBucket", "s3:ListBucketMultipartUploads"], resources = [local.bucket_arn] },
      { actions = ["s3:GetObject", "s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:DeleteObject", "s3:AbortMultipartUpload"], resources = ["${local.objects_arn}/*"] },
      { actions = ["s3:PutObject"], resources = ["${local.objects_arn}/_backstop/retention/*", "${local.objects_arn}/_backstop/locks/*/backup"] },
    ]
    notify-slack = []
  }
  reads_databases = toset(["backup", "stream", "verify", "monitor"])
  # The writers of backups, which store shared chunks (and the backup task, with backup's policy).
  reads_chunk_key = toset(["backup", "stream"])
  # The roles that write into the bucket and tag what they write: they never retag it after.
  writers = toset(["backup", "stream", "verify"])
  # The records kept under _backstop/, each appended by one function alone (create-only, the
  # bucket policy) and never deleted: what `backstop report` and the objectives are judged from.
  records = {
    verifications = "verify"
    objectives    = "monitor"
  }
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each             = local.functions
  name                 = "${var.name}-${each.key}"
  path                 = var.iam_path
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  tags                 = var.tags
}

data "aws_iam_policy_document" "function" {
  #checkov:skip=CKV_AWS_356:PutMetricData and the X-Ray calls take no resource; metrics are limited to the Backstop namespace by condition
  #checkov:skip=CKV_AWS_111:the only unscoped writes are metrics (namespace condition) and trace segments
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }
  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [local.alert_topic_arn]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }
  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Backstop"]
    }
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = local.bucket_access[each.key]
    content {
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  # The verification record is evidence: no function deletes an entry or a version of one, not
  # even retention, whose deletes reach every other key of the store.
  statement {
    sid       = "KeepsTheVerificationRecord"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = ["${local.objects_arn}/_backstop/verifications/*"]
  }
  # Each record has one writer: no other function adds to it (the backup and stream roles may
  # otherwise write anywhere under _backstop/).
  statement {
    sid       = "WritesNoOtherRecord"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = [for record, writer in local.records : "${local.objects_arn}/_backstop/${record}/*" if writer != each.key]
  }

  # Tier tags drive the lifecycle: a writer never retags an object that has one. An upload
  # carrying its tags is authorized as s3:PutObjectTagging too, so a plain Deny would refuse
  # every tagged upload. s3:ExistingObjectTag/<key> is in the request context only when the
  # object exists with that tag (S3 does not support it for PutObject), so Null = false
  # denies retagging an existing object whatever its tier, and never an upload.
  dynamic "statement" {
    for_each = contains(local.writers, each.key) ? [1] : []
    content {
      sid       = "NeverRetagsTieredObjects"
      effect    = "Deny"
      actions   = ["s3:PutObjectTagging", "s3:DeleteObjectTagging", "s3:PutObjectVersionTagging", "s3:DeleteObjectVersionTagging"]
      resources = ["${local.bucket_arn}/*"]
      condition {
        test     = "Null"
        variable = "s3:ExistingObjectTag/backstop-tier"
        values   = ["false"]
      }
    }
  }

  dynamic "statement" {
    for_each = contains(local.reads_databases, each.key) && length(local.secret_arns) > 0 ? [1] : []
    content {
      sid       = "DatabaseSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_arns
    }
  }

  dynamic "statement" {
    for_each = contains(local.reads_databases, each.key) && length(local.ssm_arns) > 0 ? [1] : []
    content {
      sid       = "DatabaseParameters"
      actions   = ["ssm:GetParameter"]
      resources = local.ssm_arns
    }
  }

  # The identity that decrypts backups: the verify function's alone, never the backup's.
  dynamic "statement" {
    for_each = each.key == "verify" && var.verify_identity_secret_arn != null ? [1] : []
    content {
      sid       = "BackupIdentity"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.verify_identity_secret_arn]
    }
  }

  # The key that names an encrypted database's shared chunks: the writers of backups alone.
  dynamic "statement" {
    for_each = contains(local.reads_chunk_key, each.key) && local.chunk_key_secret_arn != null ? [1] : []
    content {
      sid       = "ChunkKey"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.chunk_key_secret_arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "notify-slack" && var.slack.enabled ? [1] : []
    content {
      sid       = "SlackWebhook"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.slack.webhook_secret_arn]
    }
  }

  # Secrets encrypted with a customer-managed key: decrypting them needs the key too, and
  # only through the services that hold them.
  dynamic "statement" {
    for_each = (
      contains(local.reads_databases, each.key)
      || (each.key == "notify-slack" && var.slack.enabled)
      || (each.key == "verify" && var.verify_identity_secret_arn != null)
      || (contains(local.reads_chunk_key, each.key) && local.chunk_key_secret_arn != null)
    ) && length(var.secret_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "SecretKeys"
      actions   = ["kms:Decrypt"]
      resources = var.secret_kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com", "ssm.${local.region}.amazonaws.com"]
      }
    }
  }

  # The notifier's failed events go to its own queue, never back into the topic it reads.
  dynamic "statement" {
    for_each = each.key == "notify-slack" ? [1] : []
    content {
      sid       = "NotifierDeadLetters"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.notifier_dead_letters.arn]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = local.functions
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.this[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

resource "aws_iam_role_policy_attachment" "vpc" {
  for_each   = length(var.vpc_subnet_ids) > 0 ? local.in_vpc : toset([])
  role       = aws_iam_role.this[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}
