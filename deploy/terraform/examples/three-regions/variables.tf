variable "monitoring_account_id" {
  description = "The AWS account the probers run in: a member account of your Organization that is not production. Every provider refuses any other account."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.monitoring_account_id))
    error_message = "The monitoring_account_id must be a 12-digit AWS account id."
  }
}

variable "deploy_role_name" {
  description = "IAM role in the monitoring account that terraform assumes (from your CI or SSO credentials) to deploy. OrganizationAccountAccessRole works; a narrower role is better."
  type        = string
  default     = "prober-deploy"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.deploy_role_name))
    error_message = "The deploy_role_name must be an IAM role name (1 to 64 of letters, digits and +=,.@_-)."
  }
}

variable "deploy_role_external_id" {
  description = "External id the deploy role's trust policy requires, or null."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.deploy_role_external_id == null || can(regex("^[A-Za-z0-9+=,.@:/-]{2,1224}$", var.deploy_role_external_id))
    error_message = "The deploy_role_external_id must be 2 to 1224 characters of letters, digits and +=,.@:/-."
  }
}

variable "regions" {
  description = "The three regions to probe from, home region first: the home region also holds the AMP workspace and the evaluator. Pick regions near your users and away from production's, e.g. [\"eu-west-1\", \"us-east-1\", \"ap-south-1\"]."
  type        = list(string)

  validation {
    condition     = length(var.regions) == 3 && length(distinct(var.regions)) == 3
    error_message = "Give exactly three distinct regions (to add a fourth, see the README: Deployment, adding a region)."
  }

  validation {
    condition     = alltrue([for r in var.regions : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", r))])
    error_message = "Each region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Prefix of every resource name and the AMP workspace alias."
  type        = string
  default     = "prober"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "The name must be 2 to 20 characters of lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "image" {
  description = "The prober image repository without tag (build it from the repository's Dockerfile and push it to ECR in the home region; replicate it to the other regions for faster, independent pulls)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$", var.image))
    error_message = "The image must be a repository reference without tag or digest, such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/prober."
  }
}

variable "image_tag" {
  description = "The build to run everywhere: a version (v1.4.2) or a digest (sha256:...); not latest."
  type        = string

  validation {
    condition     = can(regex("^(v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?|sha256:[0-9a-f]{64})$", var.image_tag))
    error_message = "The image tag must be a version such as v1.4.2 or 1.4.2-rc.1, or a digest sha256:<64 hex digits>."
  }
}

variable "config_dir" {
  description = "Directory with probes.yaml and flows/ to deploy; null: the repository's own (the shipped sandbox-shop configuration). Run `prober validate --config <dir>/probes.yaml` before applying."
  type        = string
  default     = null

  validation {
    condition     = var.config_dir == null || fileexists("${coalesce(var.config_dir, ".")}/probes.yaml")
    error_message = "The config_dir must contain probes.yaml."
  }
}

variable "pagerduty_routing_key_secret_arn" {
  description = "Secrets Manager secret (full ARN, in the home region) holding the PagerDuty Events API v2 routing key. Given to the evaluator only, as PAGERDUTY_ROUTING_KEY."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?$", var.pagerduty_routing_key_secret_arn))
    error_message = "The pagerduty_routing_key_secret_arn must be a full Secrets Manager secret ARN (with its 6-character suffix)."
  }
}

variable "slack_token_secret_arn" {
  description = "Secrets Manager secret (full ARN) holding the Slack bot token, given to the evaluator only as SLACK_TOKEN; null leaves the Slack notifier disabled."
  type        = string
  default     = null

  validation {
    condition     = var.slack_token_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?$", coalesce(var.slack_token_secret_arn, "-")))
    error_message = "The slack_token_secret_arn must be a full Secrets Manager secret ARN or null."
  }
}

variable "flow_secret_arns" {
  description = "Secrets the flows use (probes.yaml secrets: with env:), by environment variable name => Secrets Manager or SSM ARN, e.g. { SHOP_PASSWORD = \"arn:aws:secretsmanager:...\" }. Given to the probers and to the evaluator (it loads the same probes.yaml, and every non-optional secret must resolve)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.flow_secret_arns), ["PAGERDUTY_ROUTING_KEY", "SLACK_TOKEN"])) == 0
    error_message = "The paging secrets have their own variables; probers must not get them."
  }

  validation {
    condition = alltrue([for k, v in var.flow_secret_arns : can(regex("^[A-Z_][A-Z0-9_]*$", k)) && can(regex(
      "^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?|ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+)$", v
    ))])
    error_message = "Each flow secret needs an environment variable name and a full Secrets Manager secret ARN or SSM parameter ARN."
  }
}

variable "secrets_replicated" {
  description = "The flow secrets are replicated to every region (Secrets Manager replication): each region's probers read their own region's replica and start without the home region."
  type        = bool
  default     = false
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys encrypting the secrets, if any."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", k))])
    error_message = "Each KMS key must be a key ARN."
  }
}

variable "environment" {
  description = "Plain environment for every prober and the evaluator, read by probes.yaml's $${env:NAME}: SHOP_URL (the system under test), SLACK_CHANNEL."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^[A-Z_][A-Z0-9_]*$", k)) && !contains(["PROBER_REGION", "PROMETHEUS_URL"], k)])
    error_message = "Environment variable names must be uppercase letters, digits and underscores; PROBER_REGION and PROMETHEUS_URL are set by the modules."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps every prober's and the evaluator's logs."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "vpc_cidr" {
  description = "CIDR of each region's VPC (/16 to /22; nothing peers with them, so all regions can share it)."
  type        = string
  default     = "10.60.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "The vpc_cidr must be an IPv4 CIDR such as 10.60.0.0/16."
  }
}

variable "nat_gateway_per_az" {
  description = "A NAT gateway per availability zone in every region (survives a zone outage; costs about three times more)."
  type        = bool
  default     = false
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 for every task; the image must be built for it."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64."
  }
}

variable "evaluator_external_url" {
  description = "Where people reach the evaluator's status page, linked from pages (--external-url); null when it is not exposed."
  type        = string
  default     = null

  validation {
    condition     = var.evaluator_external_url == null || can(regex("^https?://[^\\s]+$", coalesce(var.evaluator_external_url, "-")))
    error_message = "The evaluator_external_url must be an http(s) URL or null."
  }
}

variable "tracing" {
  description = "Send every region's spans to an OTLP endpoint (probes.yaml needs a tracing: block): { endpoint = base URL, headers_secret_arn = optional Secrets Manager or SSM ARN holding OTEL_EXPORTER_OTLP_HEADERS }; null for no spans."
  type = object({
    endpoint           = string
    headers_secret_arn = optional(string)
  })
  default = null

  validation {
    condition     = var.tracing == null || can(regex("^https?://[^\\s]+$", try(var.tracing.endpoint, "")))
    error_message = "The tracing.endpoint must be an http(s) URL, or tracing null."
  }
}

variable "log_search_url" {
  description = "URL linking trace ids on the status pages, {trace_id} replaced (--log-search-url), e.g. a CloudWatch Logs Insights query; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.log_search_url == null || can(regex("^https?://[^\\s]+$", coalesce(var.log_search_url, "-")))
    error_message = "The log_search_url must be an http(s) URL or null."
  }
}

variable "tags" {
  description = "Tags on every resource, through each provider's default_tags (plus app = prober)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) > 0 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "Tag keys must be 1 to 128 characters and not start with aws:; values at most 256 characters."
  }
}
