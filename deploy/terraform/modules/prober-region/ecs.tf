resource "aws_ecs_cluster" "this" {
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enhanced" : "disabled"
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = data.aws_region.current.region == var.region
      error_message = "The aws provider passed to this module is for ${data.aws_region.current.region}, but region is ${var.region}."
    }
  }
}

locals {
  # With browser steps, Chromium's budget (browser_contexts) comes off the
  # task's memory before Go's soft limit takes half of the rest;
  # environment may set its own GOMEMLIMIT.
  browser_environment = {
    for k, v in { GOMEMLIMIT = "${floor((var.memory - 512 - 384 * var.browser_contexts) / 2)}MiB" } : k => v if var.browser_contexts > 0
  }
}

module "task" {
  source = "../prober-ecs-service"

  role         = "probe"
  name_prefix  = local.prefix
  service_name = "${var.name}-probe"
  region       = var.region
  region_label = local.label
  tags         = local.tags

  image      = var.image
  image_tag  = var.image_tag
  log_level  = var.log_level
  extra_args = var.extra_args
  # /etc/prober is what config-fetch wrote: probes.yaml and the flows.
  config_file          = "/etc/prober/probes.yaml"
  config_bucket        = aws_s3_bucket.config.id
  config_objects       = local.config_objects
  environment          = merge(local.browser_environment, var.environment, { PROBER_REGION = local.label })
  secrets              = local.secret_value_from
  secrets_kms_key_arns = var.secrets_kms_key_arns
  tracing              = local.tracing

  amp                 = var.amp
  scrape_interval     = var.scrape_interval
  agent_queue_config  = { capacity = 2500, max_shards = 10, max_samples_per_send = 1000 }
  config_fetch_image  = var.config_fetch_image
  metrics_agent_image = var.metrics_agent_image

  iam = {
    execution_role_description = "ECS execution role of the prober in ${var.region}: image, secrets, logs"
    task_role_description      = "ECS task role of the prober in ${var.region}: read config, remote-write metrics"
    task_policy_json           = data.aws_iam_policy_document.task.json
  }

  logs = {
    group_name     = "/prober/${var.name}/${var.region}"
    retention_days = var.log_retention_days
    kms_key_arn    = var.log_kms_key_arn
  }

  task = {
    cpu              = var.cpu
    memory           = var.memory
    cpu_architecture = var.cpu_architecture
  }

  service = {
    cluster_arn           = aws_ecs_cluster.this.arn
    subnet_ids            = local.subnet_ids
    security_group_ids    = [aws_security_group.task.id]
    desired_count         = var.desired_count
    wait_for_steady_state = var.wait_for_steady_state
  }

  # The task reaches S3 and the NAT gateway through the private routes.
  service_after = aws_route_table_association.private[*].id
}

# The task moved into ../prober-ecs-service: the same resources at new
# addresses, not destroyed and created again.
moved {
  from = aws_cloudwatch_log_group.prober
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
  from = aws_ecs_task_definition.prober
  to   = module.task.aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.prober
  to   = module.task.aws_ecs_service.this
}
