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

locals {
  agent_config = yamlencode({
    global = {
      scrape_interval = var.scrape_interval
      scrape_timeout  = "10s"
      external_labels = { region = var.region_label }
    }
    scrape_configs = [{
      job_name       = "prober"
      static_configs = [{ targets = [local.listen] }]
      relabel_configs = [{
        target_label = "instance"
        replacement  = var.region_label
      }]
    }]
    remote_write = [{
      url            = "${var.amp.prometheus_endpoint}api/v1/remote_write"
      sigv4          = { region = var.amp.region }
      send_exemplars = true
    }]
  })

  log_options = {
    "awslogs-group"   = aws_cloudwatch_log_group.evaluator.name
    "awslogs-region"  = var.region
    "mode"            = "non-blocking"
    "max-buffer-size" = "25m"
  }

  # As in prober-region: a soft limit at half the task's memory (shared
  # with the metrics agent; Fargate's task limit is usually not visible inside the
  # container). var.environment may set its own GOMEMLIMIT.
  evaluator_environment = merge({ GOMEMLIMIT = "${floor(var.memory / 2)}MiB" }, var.environment, {
    PROBER_REGION  = var.region_label
    PROMETHEUS_URL = local.prometheus_url
  })

  evaluator_args = concat(
    [
      "run", "--role", "evaluate", "--region", var.region_label,
      "--config", "/etc/prober/evaluate.yaml", "--listen", local.listen,
      "--state-dir", local.state_dir, "--log-level", var.log_level,
    ],
    var.external_url == null ? [] : ["--external-url", var.external_url],
    var.extra_args,
  )

  containers = [
    {
      name                   = "config-fetch"
      image                  = var.config_fetch_image
      essential              = false
      entryPoint             = ["/bin/sh", "-c"]
      command                = [file("${path.module}/../prober-region/files/fetch-config.sh")]
      readonlyRootFilesystem = true
      environment = [
        { name = "AWS_REGION", value = var.region },
        { name = "CONFIG_BUCKET", value = var.config_bucket_name },
        { name = "CONFIG_OBJECTS", value = join(" ", [for k in sort(keys(local.config_objects)) : "${k}@${local.config_objects[k]}"]) },
      ]
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/prober", readOnly = false },
        { sourceVolume = "fetch-tmp", containerPath = "/tmp", readOnly = false },
      ]
      linuxParameters = { capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "config-fetch" })
      }
    },
    {
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
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "sigv4-proxy" })
      }
    },
    {
      name        = "prober"
      image       = local.image
      essential   = true
      user        = "65532:65532"
      command     = local.evaluator_args
      environment = [for k in sort(keys(local.evaluator_environment)) : { name = k, value = local.evaluator_environment[k] }]
      secrets     = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
      dependsOn = [
        { containerName = "config-fetch", condition = "SUCCESS" },
        { containerName = "sigv4-proxy", condition = "START" },
      ]
      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/prober", readOnly = true },
        { sourceVolume = "state", containerPath = local.state_dir, readOnly = false },
      ]
      # Above --shutdown-grace (30s): SIGTERM evaluates once more and drains
      # the outbox before SIGKILL.
      stopTimeout     = 45
      linuxParameters = { capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "prober" })
      }
    },
    {
      name       = "metrics-agent"
      image      = var.metrics_agent_image
      essential  = true
      user       = "65534:65534"
      entryPoint = ["/bin/sh", "-c"]
      command = [join(" ", [
        "printf '%s' \"$AGENT_CONFIG\" > /prometheus/agent.yml &&",
        "exec /bin/prometheus --agent --config.file=/prometheus/agent.yml",
        "--storage.agent.path=/prometheus/wal --web.listen-address=127.0.0.1:9090 --log.format=json",
      ])]
      environment            = [{ name = "AGENT_CONFIG", value = local.agent_config }]
      dependsOn              = [{ containerName = "prober", condition = "START" }]
      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "agent", containerPath = "/prometheus", readOnly = false },
      ]
      linuxParameters = { capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "metrics-agent" })
      }
    },
  ]
}

resource "aws_ecs_task_definition" "evaluator" {
  family                   = "${local.prefix}-evaluator"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.containers)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "config"
  }

  volume {
    name = "fetch-tmp"
  }

  volume {
    name = "agent"
  }

  volume {
    name = "state"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.state.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.state.id
        iam             = "ENABLED"
      }
    }
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = data.aws_region.current.region == var.region
      error_message = "The aws provider passed to this module is for ${data.aws_region.current.region}, but region is ${var.region}."
    }
  }
}

resource "aws_ecs_service" "evaluator" {
  name             = "${var.name}-evaluator"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.evaluator.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # One evaluator at a time: the state database has one writer, and two
  # evaluators would post to Slack twice.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = false
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"
  wait_for_steady_state   = var.wait_for_steady_state

  tags = local.tags

  depends_on = [
    aws_iam_role_policy.execution,
    aws_iam_role_policy.task,
    aws_efs_mount_target.state,
    aws_efs_file_system_policy.state,
  ]
}
