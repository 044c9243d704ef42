output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "The task definition revision (image and config versions)."
  value       = aws_ecs_task_definition.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the task's containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "execution_role_arn" {
  description = "The execution role: the only principal granted to read the secrets."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "The task role (iam.task_policy_json)."
  value       = aws_iam_role.task.arn
}
