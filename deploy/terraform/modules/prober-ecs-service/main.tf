# What every prober task shares, whatever its role (probe or evaluate): the
# log group, the two IAM roles, the Fargate task definition with its config
# fetcher and metrics agent around the prober container, and the ECS
# service. prober-region and prober-evaluator call it; the role-specific
# parts (the task role's policy, sidecars, a state volume, the network) stay
# with them and come in as inputs.
#
#   config-fetch   AWS CLI; fetches the exact S3 object versions this task
#                  definition names into the "config" volume, then exits 0
#   sidecars       var.sidecars, started before the prober (the evaluator's
#                  SigV4 proxy)
#   prober         starts when config-fetch succeeded and the sidecars
#                  started; reads /etc/prober (read-only), listens on
#                  127.0.0.1:8315 only
#   metrics-agent  Prometheus --agent: scrapes 127.0.0.1:8315, remote-writes
#                  to AMP with SigV4 (the task role)

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Resource names: prober-region's are "<prefix>-probe...", the evaluator's
  # "<prefix>-evaluator..." (and its policies "prober-evaluator-...").
  kind          = var.role == "probe" ? "probe" : "evaluator"
  policy_prefix = var.role == "probe" ? "prober" : "prober-evaluator"

  image = startswith(var.image_tag, "sha256:") ? "${var.image}@${var.image_tag}" : "${var.image}:${var.image_tag}"

  # An image in ECR is pulled with the execution role: grant exactly that
  # repository. Other registries (public ones) need no permission.
  ecr_match          = try(regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(.+)$", var.image), null)
  ecr_repository_arn = local.ecr_match == null ? null : "arn:${local.partition}:ecr:${local.ecr_match[1]}:${local.ecr_match[0]}:repository/${local.ecr_match[2]}"

  # The ARNs IAM must name: a Secrets Manager ARN without its JSON key suffix.
  secretsmanager_arns = distinct([
    for arn in values(local.prober_secrets) :
    regex("^(arn:[^:]+:secretsmanager:[^:]+:[0-9]{12}:secret:[^:]+)", arn)[0]
    if split(":", arn)[2] == "secretsmanager"
  ])
  ssm_parameter_arns = distinct([for arn in values(local.prober_secrets) : arn if split(":", arn)[2] == "ssm"])

  listen    = "127.0.0.1:8315"
  state_dir = "/var/lib/prober"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = var.logs.group_name
  retention_in_days = var.logs.retention_days
  kms_key_id        = var.logs.kms_key_arn

  tags = var.tags
}
