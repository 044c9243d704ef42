resource "aws_security_group" "task" {
  name        = "${local.prefix}-evaluator"
  description = "prober evaluator task: no inbound rules; HTTPS out, NFS to its state"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${local.prefix}-evaluator" })
}

resource "aws_vpc_security_group_egress_rule" "task_tcp" {
  for_each = toset([for p in var.egress_tcp_ports : tostring(p)])

  security_group_id = aws_security_group.task.id
  description       = "AMP, PagerDuty, Slack, AWS APIs (tcp ${each.value})"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "task_nfs" {
  security_group_id            = aws_security_group.task.id
  description                  = "NFS to the state file system"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.efs.id

  tags = local.tags
}

module "task" {
  source = "../prober-ecs-service"

  role         = "evaluate"
  name_prefix  = local.prefix
  service_name = "${var.name}-evaluator"
  region       = var.region
  region_label = var.region_label
  tags         = local.tags

  image     = var.image
  image_tag = var.image_tag
  log_level = var.log_level
  extra_args = concat(
    var.external_url == null ? [] : ["--external-url", var.external_url],
    var.extra_args,
  )
  config_file    = "/etc/prober/evaluate.yaml"
  config_bucket  = var.config_bucket_name
  config_objects = local.config_objects
  environment = merge(var.environment, {
    PROBER_REGION  = var.region_label
    PROMETHEUS_URL = local.prometheus_url
  })
  secrets              = var.secrets
  secrets_kms_key_arns = var.secrets_kms_key_arns

  amp                 = var.amp
  scrape_interval     = var.scrape_interval
  config_fetch_image  = var.config_fetch_image
  metrics_agent_image = var.metrics_agent_image

  # AMP's query API, signed with the task role's credentials, on loopback.
  sidecars = [{
    name      = "sigv4-proxy"
    image     = var.sigv4_proxy_image
    essential = true
    user      = "65534:65534"
    command = [
      "--name", "aps", "--region", var.amp.region, "--host", local.amp_host,
      "--port", local.proxy_listen,
    ]
    readonlyRootFilesystem = true
    linuxParameters        = { capabilities = { drop = ["ALL"] } }
  }]
  state_volume = {
    file_system_id  = aws_efs_file_system.state.id
    access_point_id = aws_efs_access_point.state.id
  }

  iam = {
    execution_role_description = "ECS execution role of the prober evaluator: image, paging secrets, logs"
    task_role_description      = "ECS task role of the prober evaluator: read config, query AMP, write its state on EFS"
    task_policy_json           = data.aws_iam_policy_document.task.json
  }

  logs = {
    group_name     = "/prober/${var.name}/evaluator"
    retention_days = var.log_retention_days
    kms_key_arn    = var.log_kms_key_arn
  }

  task = {
    cpu              = var.cpu
    memory           = var.memory
    cpu_architecture = var.cpu_architecture
  }

  service = {
    cluster_arn           = var.cluster_arn
    subnet_ids            = var.subnet_ids
    security_group_ids    = [aws_security_group.task.id]
    desired_count         = var.desired_count
    wait_for_steady_state = var.wait_for_steady_state
  }

  # The task mounts its state through a mount target, as the file system
  # policy allows.
  service_after = concat(aws_efs_mount_target.state[*].id, [aws_efs_file_system_policy.state.id])
}

# The task moved into ../prober-ecs-service: the same resources at new
# addresses, not destroyed and created again.
moved {
  from = aws_cloudwatch_log_group.evaluator
  to   = module.task.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.execution
  to   = module.task.aws_iam_role.execution
}

moved {
  from = aws_iam_role_policy.execution
  to   = module.task.aws_iam_role_policy.execution
}

moved {
  from = aws_iam_role.task
  to   = module.task.aws_iam_role.task
}

moved {
  from = aws_iam_role_policy.task
  to   = module.task.aws_iam_role_policy.task
}

moved {
  from = aws_ecs_task_definition.evaluator
  to   = module.task.aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.evaluator
  to   = module.task.aws_ecs_service.this
}
