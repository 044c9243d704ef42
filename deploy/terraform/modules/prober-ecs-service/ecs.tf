locals {
  # The metrics agent's whole configuration. go_* and process_* series carry
  # no region label of their own: the external label gives them one (series
  # that have one, every prober_* series, keep theirs).
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
    remote_write = [merge({
      url            = "${var.amp.prometheus_endpoint}api/v1/remote_write"
      sigv4          = { region = var.amp.region }
      send_exemplars = true
    }, { for k, v in { queue_config = var.agent_queue_config } : k => v if v != null })]
  })

  log_options = {
    "awslogs-group"  = aws_cloudwatch_log_group.this.name
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
  prober_environment = merge({ GOMEMLIMIT = "${floor(var.task.memory / 2)}MiB" }, var.environment, local.tracing_environment)

  # Spans over OTLP: the exporter reads the standard variables (probes.yaml's
  # tracing: block turns it on and wins where it sets the same), and every
  # span says where it was made.
  tracing_environment = var.tracing == null ? {} : {
    OTEL_EXPORTER_OTLP_ENDPOINT = var.tracing.endpoint
    OTEL_RESOURCE_ATTRIBUTES    = "cloud.provider=aws,cloud.platform=aws_ecs,cloud.region=${var.region},deployment.environment.name=${var.region_label}"
  }

  # The export headers (an API key) come from a secret, never the task
  # definition's plain environment.
  prober_secrets = merge(var.secrets, try(var.tracing.headers_secret_arn, null) == null ? {} : {
    OTEL_EXPORTER_OTLP_HEADERS = var.tracing.headers_secret_arn
  })

  prober_args = concat([
    "run", "--role", var.role, "--region", var.region_label,
    "--config", var.config_file, "--listen", local.listen,
    "--state-dir", local.state_dir, "--log-level", var.log_level,
  ], var.extra_args)

  config_fetch = {
    name                   = "config-fetch"
    image                  = var.config_fetch_image
    essential              = false
    entryPoint             = ["/bin/sh", "-c"]
    command                = [file("${path.module}/files/fetch-config.sh")]
    readonlyRootFilesystem = true
    environment = [
      { name = "AWS_REGION", value = var.region },
      { name = "CONFIG_BUCKET", value = var.config_bucket },
      { name = "CONFIG_OBJECTS", value = join(" ", [for k in sort(keys(var.config_objects)) : "${k}@${var.config_objects[k]}"]) },
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
  }

  # Sidecars log like every container, under their own stream prefix.
  sidecars = [for s in var.sidecars : merge(s, {
    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { "awslogs-stream-prefix" = s.name })
    }
  })]

  prober = {
    name        = "prober"
    image       = local.image
    essential   = true
    user        = "65532:65532"
    command     = local.prober_args
    environment = [for k in sort(keys(local.prober_environment)) : { name = k, value = local.prober_environment[k] }]
    secrets     = [for k in sort(keys(local.prober_secrets)) : { name = k, valueFrom = local.prober_secrets[k] }]
    dependsOn = concat(
      [{ containerName = "config-fetch", condition = "SUCCESS" }],
      [for s in var.sidecars : { containerName = s.name, condition = "START" }],
    )
    readonlyRootFilesystem = true
    mountPoints = concat(
      [{ sourceVolume = "config", containerPath = "/etc/prober", readOnly = true }],
      var.state_volume == null ? [] : [{ sourceVolume = "state", containerPath = local.state_dir, readOnly = false }],
    )
    # Above --shutdown-grace (30s): runs in flight finish (the evaluator
    # evaluates once more and drains its outbox) before SIGKILL.
    stopTimeout     = 45
    linuxParameters = { capabilities = { drop = ["ALL"] } }
    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { "awslogs-stream-prefix" = "prober" })
    }
  }

  metrics_agent = {
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
  }

  containers = concat([local.config_fetch], local.sidecars, [local.prober, local.metrics_agent])
}

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name_prefix}-${local.kind}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task.cpu
  memory                   = var.task.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.containers)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.task.cpu_architecture
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

  # The evaluator's alert state and outbox, on EFS over TLS through an
  # access point.
  dynamic "volume" {
    for_each = var.state_volume == null ? [] : [var.state_volume]
    content {
      name = "state"

      efs_volume_configuration {
        file_system_id     = volume.value.file_system_id
        transit_encryption = "ENABLED"

        authorization_config {
          access_point_id = volume.value.access_point_id
          iam             = "ENABLED"
        }
      }
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = data.aws_region.current.region == var.region
      error_message = "The aws provider passed to this module is for ${data.aws_region.current.region}, but region is ${var.region}."
    }
  }
}

resource "aws_ecs_service" "this" {
  name             = var.service_name
  cluster          = var.service.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.service.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Stop the old task before starting the new one: two probers in a region
  # would write the same series at once, and the evaluator's state database
  # has one writer (two evaluators would post to Slack twice).
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
    subnets          = var.service.subnet_ids
    security_groups  = var.service.security_group_ids
    assign_public_ip = false
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"
  wait_for_steady_state   = var.service.wait_for_steady_state

  tags = var.tags

  depends_on = [
    aws_iam_role_policy.execution,
    aws_iam_role_policy.task,
  ]

  lifecycle {
    # A reference is a dependency: the service is created only after what
    # var.service_after names (the caller's routes, the evaluator's EFS mount
    # targets), which a depends_on here cannot name across the module
    # boundary, and a depends_on on the module call would also defer its
    # data sources.
    precondition {
      condition     = alltrue([for id in var.service_after : id != ""])
      error_message = "Every id in service_after must be set."
    }
  }
}
