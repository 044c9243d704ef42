output "service_name" {
  description = "Name of the evaluator's ECS service."
  value       = module.task.service_name
}

output "task_definition_arn" {
  description = "The evaluator's task definition revision (image and config versions)."
  value       = module.task.task_definition_arn
}

output "log_group_name" {
  description = "CloudWatch log group of the evaluator's JSON logs (alert_firing, page_sent, page_failed...)."
  value       = module.task.log_group_name
}

output "prometheus_url" {
  description = "The evaluator's prometheus: url inside its task: the SigV4 proxy on loopback."
  value       = local.prometheus_url
}

output "evaluate_yaml_key" {
  description = "S3 key of the evaluator's configuration in the config bucket."
  value       = aws_s3_object.evaluate_yaml.key
}

output "state_file_system_id" {
  description = "EFS file system holding the alert state and outbox."
  value       = aws_efs_file_system.state.id
}

output "execution_role_arn" {
  description = "The evaluator's execution role: the only principal granted to read its secrets (PagerDuty routing key, Slack token)."
  value       = module.task.execution_role_arn
}

output "task_role_arn" {
  description = "The evaluator's task role (config read, AMP query and remote write, EFS)."
  value       = module.task.task_role_arn
}
