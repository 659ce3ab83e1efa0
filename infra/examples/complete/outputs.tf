output "store_url" {
  description = "backstop list --from <this>"
  value       = module.backstop.store_url
}

output "bucket" {
  description = "The backup bucket."
  value       = module.backstop.bucket
}

output "alert_topic_arn" {
  description = "The alert topic."
  value       = module.backstop.alert_topic_arn
}

output "function_names" {
  description = "The functions."
  value       = module.backstop.function_names
}

output "schedule_names" {
  description = "The schedules."
  value       = module.backstop.schedule_names
}

output "role_arns" {
  description = "The functions' roles."
  value       = module.backstop.role_arns
}

output "failure_destinations" {
  description = "Where each function's failed events go."
  value       = module.backstop.failure_destinations
}

output "container_task" {
  description = "Where to push the image, and the task the backups too big for Lambda run as."
  value       = module.backstop.container_task
}

output "restorer_policy_json" {
  description = "The policy a restorer needs."
  value       = module.backstop.restorer_policy_json
}

output "dashboard_url" {
  description = "The dashboard."
  value       = module.backstop.dashboard_url
}

output "log_group_names" {
  description = "The functions' log groups."
  value       = module.backstop.log_group_names
}

output "objectives" {
  description = "The recovery objectives each database is judged against."
  value       = module.backstop.objectives
}
