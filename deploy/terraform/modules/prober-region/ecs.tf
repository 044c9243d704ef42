resource "aws_cloudwatch_log_group" "prober" {
  name              = "/prober/${var.name}/${var.region}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn

  tags = local.tags
}

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
  # The metrics agent's whole configuration. go_* and process_* series carry
  # no region label of their own: the external label gives them one (series
  # that have one, every prober_* series, keep theirs).
  agent_config = yamlencode({
    global = {
      scrape_interval = var.scrape_interval
      scrape_timeout  = "10s"
      external_labels = { region = local.label }
    }
    scrape_configs = [{
      job_name       = "prober"
      static_configs = [{ targets = [local.listen] }]
      relabel_configs = [{
        target_label = "instance"
        replacement  = local.label
      }]
    }]
    remote_write = [{
      url            = "${var.amp.prometheus_endpoint}api/v1/remote_write"
      sigv4          = { region = var.amp.region }
      send_exemplars = true
      queue_config   = { capacity = 2500, max_shards = 10, max_samples_per_send = 1000 }
    }]
  })

  log_options = {
    "awslogs-group"  = aws_cloudwatch_log_group.prober.name
    "awslogs-region" = var.region
    # A CloudWatch hiccup must not block the prober's stdout (and so its runs).
    "mode"            = "non-blocking"
    "max-buffer-size" = "25m"
  }

  # The task's memory is shared with the metrics agent, and Fargate's limit
  # is on the task, which the prober usually cannot see from its container (so
  # --memory-limit-ratio finds none): give Go a soft limit at half the
  # task, so the collector works harder there rather than the task being
  # killed. var.environment may set its own GOMEMLIMIT.
  prober_environment = merge({ GOMEMLIMIT = "${floor(var.memory / 2)}MiB" }, var.environment, { PROBER_REGION = local.label })

  containers = [
    {
      name                   = "config-fetch"
      image                  = var.config_fetch_image
      essential              = false
      entryPoint             = ["/bin/sh", "-c"]
      command                = [file("${path.module}/files/fetch-config.sh")]
      readonlyRootFilesystem = true
      environment = [
        { name = "AWS_REGION", value = var.region },
        { name = "CONFIG_BUCKET", value = aws_s3_bucket.config.id },
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
      name      = "prober"
      image     = local.image
      essential = true
      user      = "65532:65532"
      command = concat([
        "run", "--role", "probe", "--region", local.label,
        "--config", "/etc/prober/probes.yaml", "--listen", local.listen,
        "--state-dir", local.state_dir, "--log-level", var.log_level,
      ], var.extra_args)
      environment            = [for k in sort(keys(local.prober_environment)) : { name = k, value = local.prober_environment[k] }]
      secrets                = [for k in sort(keys(local.secret_value_from)) : { name = k, valueFrom = local.secret_value_from[k] }]
      dependsOn              = [{ containerName = "config-fetch", condition = "SUCCESS" }]
      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/prober", readOnly = true },
      ]
      # Above --shutdown-grace (30s): runs in flight finish before SIGKILL.
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
      # /prometheus is a VOLUME of the Prometheus image, owned by nobody:
      # Fargate fills the task volume mounted there from it.
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

resource "aws_ecs_task_definition" "prober" {
  family                   = "${local.prefix}-probe"
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

  tags = local.tags
}

resource "aws_ecs_service" "prober" {
  name             = "${var.name}-probe"
  cluster          = aws_ecs_cluster.this.arn
  task_definition  = aws_ecs_task_definition.prober.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Stop the old task before starting the new one: two probers in a region
  # would write the same series at once.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  # A task that stops before it is steady (a configuration the prober
  # refuses exits 2) rolls the service back to the previous task definition,
  # which names the previous config object versions.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.subnet_ids
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
    aws_route_table_association.private,
  ]
}
