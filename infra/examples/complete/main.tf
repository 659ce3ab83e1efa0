provider "aws" {
  region = var.region

  # Against a local emulator (the test suite uses moto): one endpoint for every service.
  s3_use_path_style           = var.aws_endpoint != null
  skip_credentials_validation = var.aws_endpoint != null
  skip_metadata_api_check     = var.aws_endpoint != null
  skip_requesting_account_id  = false

  dynamic "endpoints" {
    for_each = var.aws_endpoint == null ? [] : [var.aws_endpoint]
    content {
      cloudwatch     = endpoints.value
      cloudwatchlogs = endpoints.value
      ecr            = endpoints.value
      ecs            = endpoints.value
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

resource "aws_kms_key" "secrets" {
  description         = "Backstop example: database and webhook secrets"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

data "aws_caller_identity" "current" {}

# The secrets the functions read. Terraform makes the (empty) secrets; their values go in by
# hand, never through Terraform variables or state:
#   aws secretsmanager put-secret-value --secret-id backstop/example/main --secret-string 'postgresql://backstop:...@db.internal:5432/app'
# A database on RDS with a managed master secret can use that secret's ARN instead.
resource "aws_secretsmanager_secret" "database" {
  #checkov:skip=CKV2_AWS_57:rotate the database password with the database's own rotation (RDS-managed secrets); this example stores a URL
  for_each   = toset(["main", "warehouse"])
  name       = "backstop/example/${each.key}"
  kms_key_id = aws_kms_key.secrets.arn
}

# The PgBouncer admin console in front of main (a stats user), for the monitor's pooler figures.
resource "aws_secretsmanager_secret" "pooler" {
  #checkov:skip=CKV2_AWS_57:a PgBouncer stats user's password is rotated with the pooler's own configuration; this example stores a URL
  name       = "backstop/example/main-pgbouncer"
  kms_key_id = aws_kms_key.secrets.arn
}

# The server the weekly test restore creates its scratch databases on: a separate, disposable
# server (never a production one), reached by a user with CREATEDB.
resource "aws_secretsmanager_secret" "scratch" {
  #checkov:skip=CKV2_AWS_57:the scratch server's password is rotated with that server; this example stores a URL
  name       = "backstop/example/scratch"
  kms_key_id = aws_kms_key.secrets.arn
}

resource "aws_secretsmanager_secret" "slack" {
  #checkov:skip=CKV2_AWS_57:a Slack webhook URL cannot be rotated automatically; replace it by hand when revoked
  count      = var.slack ? 1 : 0
  name       = "backstop/example/slack-webhook"
  kms_key_id = aws_kms_key.secrets.arn
}

# The identity that reads encrypted backups, for the verify function. Put it in by hand
# (`backstop keygen -o key && aws secretsmanager put-secret-value --secret-id ... --secret-string file://key`),
# never through Terraform state; give its recipient to `recipients`.
resource "aws_secretsmanager_secret" "verify_identity" {
  #checkov:skip=CKV2_AWS_57:an age identity cannot be rotated without re-encrypting the backups; replace it by making a new one and adding its recipient
  name       = "backstop/example/verify-identity"
  kms_key_id = aws_kms_key.secrets.arn
}

# The key that names encrypted backups' shared chunks, for the backup and stream functions.
# Put it in by hand, never through Terraform state, and keep it (a new key makes the next
# backup store every chunk again):
#   aws secretsmanager put-secret-value --secret-id backstop/example/chunk-key --secret-string "$(openssl rand -hex 32)"
resource "aws_secretsmanager_secret" "chunk_key" {
  #checkov:skip=CKV2_AWS_57:a new chunk key makes the next backup store every chunk again; replace it by hand if it leaks
  name       = "backstop/example/chunk-key"
  kms_key_id = aws_kms_key.secrets.arn
}

module "backstop" {
  source = "../../modules/backstop"

  name             = "backstop-example"
  lambda_artifacts = var.lambda_artifacts
  alert_emails     = var.alert_emails
  # An organisation's convention for where its roles live.
  iam_path = "/backstop/"

  databases = {
    main = {
      secret_arn        = aws_secretsmanager_secret.database["main"].arn
      sslmode           = "verify-full"
      pooler_secret_arn = aws_secretsmanager_secret.pooler.arn
      # What the team promises for it: at most 15 minutes of data lost, back within the hour,
      # a restore tested at least every two weeks. The monitor judges these every hour.
      objectives = { rpo = "15m", rto = "1h", restore_test_every = "14d" }
    }
    # Too big for a 15-minute invocation: its scheduled backups start the container task.
    # No objectives declared: defaults that tolerate one failed run, an RPO of two and a
    # half drains (12m 30s), an RTO of 4h, a restore test every two and a half scheduled
    # ones (17d 12h).
    warehouse = { secret_arn = aws_secretsmanager_secret.database["warehouse"].arn, sslmode = "verify-full", runner = "fargate" }
  }
  # The container task: warehouse's backups, and any of main's that would not fit in Lambda.
  fargate = {
    enabled    = true
    image_tag  = var.image_tag
    subnet_ids = var.task_subnet_ids
    spot       = true
  }
  # The secrets are encrypted with this example's own key: the functions need to decrypt it.
  secret_kms_key_arns = [aws_kms_key.secrets.arn]
  # Encrypted backups: the backup function gets these public keys only.
  recipients                 = var.backup_recipients
  require_encryption         = length(var.backup_recipients) > 0
  verify_identity_secret_arn = aws_secretsmanager_secret.verify_identity.arn
  # Each backup stores only the table data that changed, as shared chunks (the default, said
  # here); encrypted ones name their chunks with this key.
  incremental_backups  = true
  chunk_key_secret_arn = aws_secretsmanager_secret.chunk_key.arn
  # Chunks a month old to Glacier Instant Retrieval: cheaper to keep, dearer to read (deep
  # verification reads the newest backup's chunks); left out, they stay in Standard.
  shared_chunks_instant_retrieval_after_days = 30
  restore_verification = {
    enabled            = true
    scratch_secret_arn = aws_secretsmanager_secret.scratch.arn
  }
  slack = {
    enabled            = var.slack
    webhook_secret_arn = var.slack ? aws_secretsmanager_secret.slack[0].arn : null
  }
  # One override: the rest keep their defaults.
  functions = { monitor = { memory = 512 } }

  point_in_time_recovery = { enabled = true }

  object_lock = { mode = "GOVERNANCE", days = 7 }

  tags = { project = "backstop-example" }
}
