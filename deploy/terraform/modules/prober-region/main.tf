# One region's prober: an ECS Fargate service running `prober run --role
# probe` in private subnets behind a NAT gateway, its configuration fetched
# from a versioned S3 bucket at task start, its secrets injected by ECS from
# Secrets Manager or SSM, its JSON logs in CloudWatch and its metrics
# remote-written to Amazon Managed Prometheus by a Prometheus agent sidecar.
#
# The task (config-fetch, prober, metrics-agent), its IAM roles, log group
# and ECS service come from ../prober-ecs-service, which the evaluator
# shares; this module adds the network, the config bucket, the cluster and
# what the task role may do.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  label      = coalesce(var.region_label, var.region)
  prefix     = "${var.name}-${var.region}"
  account_id = data.aws_caller_identity.current.account_id

  tags = merge(var.tags, {
    "prober:module" = "prober-region"
    "prober:region" = local.label
  })

  # Secrets as ECS injects them (valueFrom): optionally this region's
  # replica of a Secrets Manager secret.
  secret_value_from = {
    for k, arn in var.secrets : k => (
      var.secrets_replicated && startswith(split(":", arn)[2], "secretsmanager")
      ? replace(arn, "/^(arn:[^:]+:secretsmanager:)[a-z0-9-]+:/", "$${1}${var.region}:")
      : arn
    )
  }

  # The tracing headers' secret, read like the others (its replica too).
  tracing = var.tracing == null ? null : {
    endpoint = var.tracing.endpoint
    headers_secret_arn = try(var.tracing.headers_secret_arn, null) == null ? null : (
      var.secrets_replicated && startswith(split(":", var.tracing.headers_secret_arn)[2], "secretsmanager")
      ? replace(var.tracing.headers_secret_arn, "/^(arn:[^:]+:secretsmanager:)[a-z0-9-]+:/", "$${1}${var.region}:")
      : var.tracing.headers_secret_arn
    )
  }
}
