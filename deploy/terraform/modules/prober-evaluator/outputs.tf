output "service_name" {
  description = "Name of the evaluator's ECS service."
  value       = aws_ecs_service.evaluator.name
}

output "task_definition_arn" {
  description = "The evaluator's task definition revision (image and config versions)."
  value       = aws_ecs_task_definition.evaluator.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the evaluator's JSON logs (alert_firing, page_sent, page_failed...)."
  value       = aws_cloudwatch_log_group.evaluator.name
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
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "The evaluator's task role (config read, AMP query and remote write, EFS)."
  value       = aws_iam_role.task.arn
}
