# prober in three regions of a separate monitoring account:
#
#   regions[0] (home)   prober (role probe)  + AMP workspace + evaluator
#   regions[1]          prober (role probe)
#   regions[2]          prober (role probe)
#
# Each prober remote-writes its metrics to the one AMP workspace; the
# evaluator evaluates the rules over all of them there and pages. Grafana
# reads the same workspace (output grafana_datasource_url).

locals {
  config_dir = coalesce(var.config_dir, "${path.root}/../../../..")

  tags = merge(var.tags, { app = "prober" })

  extra_args = var.log_search_url == null ? [] : ["--log-search-url", var.log_search_url]

  evaluator_secrets = merge(
    var.flow_secret_arns,
    { PAGERDUTY_ROUTING_KEY = var.pagerduty_routing_key_secret_arn },
    var.slack_token_secret_arn == null ? {} : { SLACK_TOKEN = var.slack_token_secret_arn },
  )

  amp = {
    workspace_arn       = aws_prometheus_workspace.this.arn
    prometheus_endpoint = aws_prometheus_workspace.this.prometheus_endpoint
    region              = var.regions[0]
  }

  # Regions that probes.yaml's rules name (quorum and absent rules).
  probes       = yamldecode(file("${local.config_dir}/probes.yaml"))
  rule_regions = toset(flatten([for r in try(local.probes.rules, []) : concat(try(r.flow_failing.regions, []), try(r.absent.regions, []))]))
  region_labels = toset([
    module.probe_home.region_label,
    module.probe_second.region_label,
    module.probe_third.region_label,
  ])
}

resource "aws_prometheus_workspace" "this" {
  provider = aws.home

  alias = var.name

  tags = local.tags
}

module "probe_home" {
  source = "../../modules/prober-region"
  providers = {
    aws = aws.home
  }

  name                 = var.name
  region               = var.regions[0]
  image                = var.image
  image_tag            = var.image_tag
  config_dir           = local.config_dir
  secrets              = var.flow_secret_arns
  secrets_replicated   = var.secrets_replicated
  secrets_kms_key_arns = var.secrets_kms_key_arns
  environment          = var.environment
  tracing              = var.tracing
  amp                  = local.amp
  log_retention_days   = var.log_retention_days
  vpc_cidr             = var.vpc_cidr
  nat_gateway_per_az   = var.nat_gateway_per_az
  cpu_architecture     = var.cpu_architecture
  extra_args           = local.extra_args
  tags                 = local.tags
}

module "probe_second" {
  source = "../../modules/prober-region"
  providers = {
    aws = aws.second
  }

  name                 = var.name
  region               = var.regions[1]
  image                = var.image
  image_tag            = var.image_tag
  config_dir           = local.config_dir
  secrets              = var.flow_secret_arns
  secrets_replicated   = var.secrets_replicated
  secrets_kms_key_arns = var.secrets_kms_key_arns
  environment          = var.environment
  tracing              = var.tracing
  amp                  = local.amp
  log_retention_days   = var.log_retention_days
  vpc_cidr             = var.vpc_cidr
  nat_gateway_per_az   = var.nat_gateway_per_az
  cpu_architecture     = var.cpu_architecture
  extra_args           = local.extra_args
  tags                 = local.tags
}

module "probe_third" {
  source = "../../modules/prober-region"
  providers = {
    aws = aws.third
  }

  name                 = var.name
  region               = var.regions[2]
  image                = var.image
  image_tag            = var.image_tag
  config_dir           = local.config_dir
  secrets              = var.flow_secret_arns
  secrets_replicated   = var.secrets_replicated
  secrets_kms_key_arns = var.secrets_kms_key_arns
  environment          = var.environment
  tracing              = var.tracing
  amp                  = local.amp
  log_retention_days   = var.log_retention_days
  vpc_cidr             = var.vpc_cidr
  nat_gateway_per_az   = var.nat_gateway_per_az
  cpu_architecture     = var.cpu_architecture
  extra_args           = local.extra_args
  tags                 = local.tags
}

module "evaluator" {
  source = "../../modules/prober-evaluator"
  providers = {
    aws = aws.home
  }

  name                 = var.name
  region               = var.regions[0]
  image                = var.image
  image_tag            = var.image_tag
  config_dir           = local.config_dir
  cluster_arn          = module.probe_home.cluster_arn
  vpc_id               = module.probe_home.vpc_id
  subnet_ids           = module.probe_home.private_subnet_ids
  config_bucket_name   = module.probe_home.config_bucket_name
  config_bucket_arn    = module.probe_home.config_bucket_arn
  config_objects       = module.probe_home.config_objects
  amp                  = local.amp
  secrets              = local.evaluator_secrets
  secrets_kms_key_arns = var.secrets_kms_key_arns
  environment          = var.environment
  external_url         = var.evaluator_external_url
  log_retention_days   = var.log_retention_days
  cpu_architecture     = var.cpu_architecture
  extra_args           = local.extra_args
  tags                 = local.tags
}

# A warning (not an error) when the rules name regions nothing deploys, or a
# region is deployed that no quorum or absent rule watches. The labels are
# sorted as [for r in SET : tostring(r)]: they are module outputs, whose type
# terraform validate does not know, and sort() of the set as it is fails it.
check "rule_regions" {
  assert {
    condition     = length(local.rule_regions) == 0 || (length(setsubtract(local.rule_regions, local.region_labels)) == 0 && length(setsubtract(local.region_labels, local.rule_regions)) == 0)
    error_message = "probes.yaml's rules name regions [${join(", ", sort([for r in local.rule_regions : tostring(r)]))}] but the probers run as [${join(", ", sort([for r in local.region_labels : tostring(r)]))}]: update flow_failing.regions and absent.regions."
  }
}
