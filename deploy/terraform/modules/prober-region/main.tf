# One region's prober: an ECS Fargate service running `prober run --role
# probe` in private subnets behind a NAT gateway, its configuration fetched
# from a versioned S3 bucket at task start, its secrets injected by ECS from
# Secrets Manager or SSM, its JSON logs in CloudWatch and its metrics
# remote-written to Amazon Managed Prometheus by a Prometheus agent sidecar.
#
# The task, as containers sharing one network namespace (awsvpc):
#
#   config-fetch   AWS CLI; fetches the exact S3 object versions this task
#                  definition names into the "config" volume, then exits 0
#   prober         starts when config-fetch succeeded; reads /etc/prober
#                  (read-only), listens on 127.0.0.1:8315 only
#   metrics-agent  Prometheus --agent: scrapes 127.0.0.1:8315, remote-writes
#                  to AMP with SigV4 (the task role)

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  label      = coalesce(var.region_label, var.region)
  prefix     = "${var.name}-${var.region}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  tags = merge(var.tags, {
    "prober:module" = "prober-region"
    "prober:region" = local.label
  })

  image = startswith(var.image_tag, "sha256:") ? "${var.image}@${var.image_tag}" : "${var.image}:${var.image_tag}"

  # An image in ECR is pulled with the execution role: grant exactly that
  # repository. Other registries (public ones) need no permission.
  ecr_match          = try(regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(.+)$", var.image), null)
  ecr_repository_arn = local.ecr_match == null ? null : "arn:${local.partition}:ecr:${local.ecr_match[1]}:${local.ecr_match[0]}:repository/${local.ecr_match[2]}"

  # Secrets as ECS injects them (valueFrom), and the ARNs IAM must name: a
  # Secrets Manager ARN without its JSON key suffix, optionally this region's
  # replica.
  secret_value_from = {
    for k, arn in var.secrets : k => (
      var.secrets_replicated && startswith(split(":", arn)[2], "secretsmanager")
      ? replace(arn, "/^(arn:[^:]+:secretsmanager:)[a-z0-9-]+:/", "$${1}${var.region}:")
      : arn
    )
  }
  secretsmanager_arns = distinct([
    for arn in values(local.secret_value_from) :
    regex("^(arn:[^:]+:secretsmanager:[^:]+:[0-9]{12}:secret:[^:]+)", arn)[0]
    if split(":", arn)[2] == "secretsmanager"
  ])
  ssm_parameter_arns = distinct([for arn in values(local.secret_value_from) : arn if split(":", arn)[2] == "ssm"])

  listen    = "127.0.0.1:8315"
  state_dir = "/var/lib/prober"
}
