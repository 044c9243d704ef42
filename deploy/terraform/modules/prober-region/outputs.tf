output "region" {
  description = "The AWS region of this prober."
  value       = var.region
}

output "region_label" {
  description = "The region label on this prober's metrics and logs (name it in flow_failing.regions and absent.regions)."
  value       = local.label
}

output "cluster_arn" {
  description = "ARN of the region's ECS cluster (the evaluator runs in the home region's)."
  value       = aws_ecs_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the region's ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "Name of the prober's ECS service (aws ecs update-service --cluster <cluster_name> --service <service_name> --force-new-deployment)."
  value       = module.task.service_name
}

output "task_definition_arn" {
  description = "The task definition revision the service runs, pinning the image and the config object versions."
  value       = module.task.task_definition_arn
}

output "log_group_name" {
  description = "CloudWatch log group of the prober's JSON logs (streams prober/..., config-fetch/..., metrics-agent/...)."
  value       = module.task.log_group_name
}

output "config_bucket_name" {
  description = "The versioned bucket holding this region's probes.yaml and flows under config/."
  value       = aws_s3_bucket.config.id
}

output "config_bucket_arn" {
  description = "ARN of the config bucket."
  value       = aws_s3_bucket.config.arn
}

output "config_objects" {
  description = "Config object key => version id, as the task definition pins them."
  value       = local.config_objects
}

output "vpc_id" {
  description = "The region's VPC: the one created, or var.vpc_id."
  value       = local.vpc_id
}

output "private_subnet_ids" {
  description = "Subnets where tasks run: the private subnets created (no public IPs; egress through NAT), or var.subnet_ids."
  value       = local.subnet_ids
}

output "egress_ips" {
  description = "Public IPs of the NAT gateways: every probe from this region comes from one of them (empty with vpc_id: the existing VPC's egress is its own)."
  value       = aws_eip.nat[*].public_ip
}

output "execution_role_arn" {
  description = "The execution role, the only principal this module grants to read the secrets (use it in the secrets' resource policies)."
  value       = module.task.execution_role_arn
}

output "task_role_arn" {
  description = "The task role (config read, AMP remote write)."
  value       = module.task.task_role_arn
}
