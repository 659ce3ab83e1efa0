output "bucket" {
  description = "The backup bucket."
  value       = local.bucket
}

output "store_url" {
  description = "The store URL for the CLI: backstop list --from <this>."
  value       = local.store_url
}

output "alert_topic_arn" {
  description = "The alert topic; subscribe more people or systems to it."
  value       = local.alert_topic_arn
}

output "kms_key_arn" {
  description = "The key encrypting the bucket, topic, logs and function settings."
  value       = local.kms_key_arn
}

output "function_names" {
  description = "The functions, by role (backup, verify, monitor, retention, notify-slack)."
  value       = { for name, fn in aws_lambda_function.this : name => fn.function_name }
}

output "role_arns" {
  description = "The functions' IAM roles."
  value       = { for name, role in aws_iam_role.this : name => role.arn }
}

output "schedule_names" {
  description = "The EventBridge Scheduler schedules."
  value       = [for s in aws_scheduler_schedule.this : s.name]
}

output "dead_letter_queue_url" {
  description = "Schedule invocations that failed after their retries land here."
  value       = aws_sqs_queue.dead_letters.url
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "objectives" {
  description = "The recovery objectives in force, per database, as the monitor judges them: rpo, rto and restore_test_every as declared or by default (restore_test_every null: not judged), each also in seconds (rpo_seconds...), and the intervals they are judged against (backup_every; stream_every with point_in_time_recovery; restore_test_schedule with restore_verification). The monitor's BACKSTOP_OBJECTIVES holds what was declared and those intervals."
  value       = local.objectives
}

output "failure_destinations" {
  description = "Where each function's failed asynchronous events go (dead-letter target and on-failure destination): the alert topic, except for the notifier it feeds, whose failures go to their own queue."
  value       = local.failure_destination
}

output "container_task" {
  description = "The container task for backups too big for Lambda (null without fargate.enabled): push the image to repository_url (`skopeo copy oci-archive:target/image/backstop-arm64.oci.tar docker://<repository_url>:<image_tag>`); cluster and task_definition are what the backup function dispatches to; verify_task_definition runs the verifications of databases with runner = \"fargate\"."
  value = local.fargate ? {
    repository_url         = aws_ecr_repository.this[0].repository_url
    cluster                = aws_ecs_cluster.this[0].arn
    task_definition        = aws_ecs_task_definition.this["backup"].arn
    task_role              = aws_iam_role.task["backup"].arn
    log_group              = aws_cloudwatch_log_group.task["backup"].name
    verify_task_definition = aws_ecs_task_definition.this["verify"].arn
    verify_task_role       = aws_iam_role.task["verify"].arn
  } : null
}

data "aws_iam_policy_document" "restorer" {
  statement {
    sid       = "ListTheStore"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix}/*"]
    }
  }
  statement {
    sid       = "ReadBackups"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"]
    resources = ["${local.objects_arn}/*"]
  }
  statement {
    sid       = "BringBackFromGlacier"
    actions   = ["s3:RestoreObject"]
    resources = ["${local.objects_arn}/*"]
  }
  statement {
    sid       = "ReadTheBucketKey"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
  }
}

output "restorer_policy_json" {
  description = "The IAM policy the people or roles who restore need, and nothing more: list and read the store, restore archived objects from Glacier, decrypt with the bucket's key (docs/runbook.md, step 0). Attach it with aws_iam_policy."
  value       = data.aws_iam_policy_document.restorer.json
}

output "dashboard_url" {
  description = "The CloudWatch dashboard in the console."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "log_group_names" {
  description = "The functions' log groups, by function (and the container task's, by job, when fargate is enabled)."
  value = merge(
    { for name, group in aws_cloudwatch_log_group.this : name => group.name },
    { for job, group in aws_cloudwatch_log_group.task : "task-${job}" => group.name },
  )
}

output "bucket_policy_json" {
  description = "The bucket policy the module sets on its bucket (writers may only create backup objects, never replace them; TLS only). With bucket_name, attach these statements to that bucket's policy."
  value       = data.aws_iam_policy_document.bucket.json
}

output "kms_key_policy_json" {
  description = "The key policy the module sets on its key (the account administers it; CloudWatch Logs, SNS, CloudWatch, EventBridge and Scheduler may use it). With kms_key_arn, that key's policy needs the services' statement."
  value       = data.aws_iam_policy_document.key.json
}
