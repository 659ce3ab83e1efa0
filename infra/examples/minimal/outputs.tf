output "store_url" {
  description = "Where the backups are: backstop list --from <this>."
  value       = module.backstop.store_url
}

output "function_names" {
  description = "The functions, by job (aws lambda invoke --invocation-type Event ...)."
  value       = module.backstop.function_names
}

output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = module.backstop.dashboard_url
}

output "restorer_policy_json" {
  description = "The IAM policy the people who restore need."
  value       = module.backstop.restorer_policy_json
}
