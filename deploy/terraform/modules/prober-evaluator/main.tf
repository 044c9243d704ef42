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
# The task (from ../prober-ecs-service, as prober-region's):
#
#   config-fetch   AWS CLI: probes.yaml, flows and evaluate.yaml at pinned versions
#   sigv4-proxy    127.0.0.1:8005 -> AMP query API, signed
#   prober         --role evaluate --config /etc/prober/evaluate.yaml,
#                  alert state and outbox on EFS (/var/lib/prober)
#   metrics-agent  scrapes the evaluator's own metrics, remote-writes to AMP

locals {
  prefix = "${var.name}-${var.region}"

  tags = merge(var.tags, {
    "prober:module" = "prober-evaluator"
    "prober:region" = var.region_label
  })

  workspace_id   = regex("workspace/(ws-[0-9A-Za-z-]+)$", var.amp.workspace_arn)[0]
  amp_host       = regex("^https://([^/]+)/", var.amp.prometheus_endpoint)[0]
  proxy_listen   = "127.0.0.1:8005"
  prometheus_url = "http://${local.proxy_listen}/workspaces/${local.workspace_id}"

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

# The task role's policy (the roles, the task and the service are in
# ../prober-ecs-service, shared with prober-region).
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
