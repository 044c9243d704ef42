# The evaluator: `prober run --role evaluate` in the home region. It runs no
# flows; it evaluates the rules of probes.yaml over every region's results in
# Amazon Managed Prometheus and pages through PagerDuty and Slack.
#
# AMP's query API takes only SigV4-signed requests, and the prober speaks
# bearer or basic auth only. A SigV4 proxy sidecar closes the gap: the
# evaluator's prometheus: url is http://127.0.0.1:8005/workspaces/<id>
# (PROMETHEUS_URL); the proxy (aws-sigv4-proxy --name aps) forwards each
# request to https://aps-workspaces.<region>.amazonaws.com with the same path,
# signed with the task role's credentials. It listens on loopback only.
#
#   config-fetch   AWS CLI: probes.yaml, flows and evaluate.yaml at pinned versions
#   sigv4-proxy    127.0.0.1:8005 -> AMP query API, signed
#   prober         --role evaluate --config /etc/prober/evaluate.yaml,
#                  alert state and outbox on EFS (/var/lib/prober)
#   metrics-agent  scrapes the evaluator's own metrics, remote-writes to AMP

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  prefix     = "${var.name}-${var.region}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  tags = merge(var.tags, {
    "prober:module" = "prober-evaluator"
    "prober:region" = var.region_label
  })

  image = startswith(var.image_tag, "sha256:") ? "${var.image}@${var.image_tag}" : "${var.image}:${var.image_tag}"

  ecr_match          = try(regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(.+)$", var.image), null)
  ecr_repository_arn = local.ecr_match == null ? null : "arn:${local.partition}:ecr:${local.ecr_match[1]}:${local.ecr_match[0]}:repository/${local.ecr_match[2]}"

  secretsmanager_arns = distinct([
    for arn in values(var.secrets) :
    regex("^(arn:[^:]+:secretsmanager:[^:]+:[0-9]{12}:secret:[^:]+)", arn)[0]
    if split(":", arn)[2] == "secretsmanager"
  ])
  ssm_parameter_arns = distinct([for arn in values(var.secrets) : arn if split(":", arn)[2] == "ssm"])

  workspace_id   = regex("workspace/(ws-[0-9A-Za-z-]+)$", var.amp.workspace_arn)[0]
  amp_host       = regex("^https://([^/]+)/", var.amp.prometheus_endpoint)[0]
  proxy_listen   = "127.0.0.1:8005"
  prometheus_url = "http://${local.proxy_listen}/workspaces/${local.workspace_id}"

  listen    = "127.0.0.1:8315"
  state_dir = "/var/lib/prober"

  # evaluate.yaml is probes.yaml with a prometheus: block appended at the
  # end, so that every line keeps its number: an error the evaluator reports
  # at evaluate.yaml:14:9 is at probes.yaml:14:9.
  probes_yaml      = file("${var.config_dir}/probes.yaml")
  has_prometheus   = contains(keys(yamldecode(local.probes_yaml)), "prometheus")
  prometheus_block = <<-EOT
    # Appended by deploy/terraform/modules/prober-evaluator: every region's
    # results meet in Amazon Managed Prometheus, read through the SigV4 proxy
    # sidecar.
    prometheus: {url: "$${env:PROMETHEUS_URL}", timeout: 20s}
  EOT
  evaluate_yaml    = local.has_prometheus ? local.probes_yaml : "${trimsuffix(local.probes_yaml, "\n")}\n\n${local.prometheus_block}"
}

resource "aws_s3_object" "evaluate_yaml" {
  bucket       = var.config_bucket_name
  key          = "evaluator/evaluate.yaml"
  content      = local.evaluate_yaml
  content_type = "application/yaml"

  lifecycle {
    precondition {
      condition     = !local.has_prometheus || strcontains(local.probes_yaml, "env:PROMETHEUS_URL")
      error_message = "probes.yaml has a prometheus: block: make its url \"$${env:PROMETHEUS_URL:-http://127.0.0.1:9090}\" (or leave the block out) so that the evaluator reaches AMP through its SigV4 proxy."
    }
  }
}

locals {
  # key => version id of everything the evaluator fetches.
  config_objects = merge(var.config_objects, {
    (aws_s3_object.evaluate_yaml.key) = aws_s3_object.evaluate_yaml.version_id
  })
}

resource "aws_cloudwatch_log_group" "evaluator" {
  name              = "/prober/${var.name}/evaluator"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn

  tags = local.tags
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-evaluator-exec"
  description        = "ECS execution role of the prober evaluator: image, paging secrets, logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.evaluator.arn}:*"]
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [local.ecr_repository_arn]
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : ["ecr"]
    content {
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"] # GetAuthorizationToken has no resource-level permissions
    }
  }

  dynamic "statement" {
    for_each = length(local.secretsmanager_arns) > 0 ? ["secretsmanager"] : []
    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secretsmanager_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) > 0 ? ["ssm"] : []
    content {
      sid       = "ReadParameters"
      actions   = ["ssm:GetParameters"]
      resources = local.ssm_parameter_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? ["kms"] : []
    content {
      sid       = "DecryptSecrets"
      actions   = ["kms:Decrypt"]
      resources = var.secrets_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com", "ssm.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "prober-evaluator-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${local.prefix}-evaluator-task"
  description        = "ECS task role of the prober evaluator: read config, query AMP, write its state on EFS"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json

  tags = local.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid     = "ReadConfig"
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [
      "${var.config_bucket_arn}/config/*",
      "${var.config_bucket_arn}/evaluator/*",
    ]
  }

  statement {
    sid       = "QueryMetrics"
    actions   = ["aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"]
    resources = [var.amp.workspace_arn]
  }

  statement {
    sid       = "RemoteWriteOwnMetrics"
    actions   = ["aps:RemoteWrite"]
    resources = [var.amp.workspace_arn]
  }

  statement {
    sid       = "MountState"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.state.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.state.arn]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "prober-evaluator-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
