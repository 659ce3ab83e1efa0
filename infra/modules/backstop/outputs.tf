output "bucket" {
  description = "The backup bucket."
  value       = aws_s3_bucket.this.id
}

output "store_url" {
  description = "The store URL for the CLI: backstop list --from <this>."
  value       = local.store_url
}

output "alert_topic_arn" {
  description = "The alert topic; subscribe more people or systems to it."
  value       = aws_sns_topic.this.arn
}

output "kms_key_arn" {
  description = "The key encrypting the bucket, topic, logs and function settings."
  value       = aws_kms_key.this.arn
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
