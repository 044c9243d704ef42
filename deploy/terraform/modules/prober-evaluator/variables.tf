# Inputs of the evaluator (role evaluate): one ECS service in the home
# region's cluster and VPC (outputs of that region's prober-region module),
# reading every region's results from AMP through a SigV4 proxy sidecar and
# paging through PagerDuty and Slack.

variable "name" {
  description = "Prefix of every resource name; the same as the prober-region modules'."
  type        = string
  default     = "prober"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "The name must be 2 to 20 characters of lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "The home region (where the AMP workspace, the cluster and the config bucket passed in are). Must be the region of the aws provider passed to the module."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-west-1."
  }
}

variable "region_label" {
  description = "The evaluator's --region label on its own metrics and logs. Not a probing region: keep it out of flow_failing.regions and absent.regions."
  type        = string
  default     = "global"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", var.region_label))
    error_message = "The region label must be 1 to 63 lowercase letters, digits, dashes or underscores."
  }
}

variable "image" {
  description = "The prober image repository, without tag or digest (the same image as the probers')."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$", var.image))
    error_message = "The image must be a repository reference without tag or digest."
  }
}

variable "image_tag" {
  description = "The image version (v1.4.2) or digest (sha256:<64 hex>); not latest."
  type        = string

  validation {
    condition     = can(regex("^(v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?|sha256:[0-9a-f]{64})$", var.image_tag))
    error_message = "The image tag must be a version such as v1.4.2 or a digest sha256:<64 hex digits>."
  }
}

variable "config_dir" {
  description = "The same config directory the probers get (probes.yaml and flows/). The evaluator runs probes.yaml with a prometheus: block appended that reads $${env:PROMETHEUS_URL}, unless probes.yaml has one already (then it must use $${env:PROMETHEUS_URL})."
  type        = string

  validation {
    condition     = fileexists("${var.config_dir}/probes.yaml")
    error_message = "The config_dir must contain probes.yaml."
  }
}

variable "cluster_arn" {
  description = "ECS cluster to run in: the home region's prober-region module output cluster_arn."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/.+$", var.cluster_arn))
    error_message = "The cluster_arn must be an ECS cluster ARN."
  }
}

variable "vpc_id" {
  description = "VPC of the home region's prober (module output vpc_id)."
  type        = string

  validation {
    condition     = startswith(var.vpc_id, "vpc-")
    error_message = "The vpc_id must be a VPC id (vpc-...)."
  }
}

variable "subnet_ids" {
  description = "Private subnets to run in (module output private_subnet_ids); the state file system gets a mount target in each."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : startswith(s, "subnet-")])
    error_message = "Give at least one subnet id (subnet-...)."
  }
}

variable "config_bucket_name" {
  description = "The home region's config bucket (module output config_bucket_name); evaluate.yaml is uploaded next to the probers' config."
  type        = string

  validation {
    condition     = length(var.config_bucket_name) >= 3 && length(var.config_bucket_name) <= 63
    error_message = "The config_bucket_name must be an S3 bucket name."
  }
}

variable "config_bucket_arn" {
  description = "ARN of that bucket (module output config_bucket_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]{3,63}$", var.config_bucket_arn))
    error_message = "The config_bucket_arn must be an S3 bucket ARN."
  }
}

variable "config_objects" {
  description = "Config object key => version id (module output config_objects): the flows the evaluator reads, at the versions the home region's prober runs."
  type        = map(string)

  validation {
    condition     = contains(keys(var.config_objects), "config/probes.yaml")
    error_message = "The config_objects must include config/probes.yaml."
  }
}

variable "amp" {
  description = "The AMP workspace every region writes to and the evaluator queries: its ARN, prometheus_endpoint (with trailing slash) and region."
  type = object({
    workspace_arn       = string
    prometheus_endpoint = string
    region              = string
  })

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:aps:[a-z0-9-]+:[0-9]{12}:workspace/ws-[0-9A-Za-z-]+$", var.amp.workspace_arn))
    error_message = "The amp.workspace_arn must be an AMP workspace ARN."
  }

  validation {
    condition     = can(regex("^https://aps-workspaces\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/workspaces/ws-[0-9A-Za-z-]+/$", var.amp.prometheus_endpoint))
    error_message = "The amp.prometheus_endpoint must be https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/."
  }

  validation {
    condition     = strcontains(var.amp.prometheus_endpoint, "aps-workspaces.${var.amp.region}.") && strcontains(var.amp.workspace_arn, ":aps:${var.amp.region}:")
    error_message = "The amp.region must be the region of the workspace ARN and of its endpoint."
  }
}

variable "secrets" {
  description = "Secrets as environment variables: name => Secrets Manager secret ARN (optionally with a JSON key) or SSM parameter ARN. The evaluator pages: PAGERDUTY_ROUTING_KEY, SLACK_TOKEN, and every non-optional secret probes.yaml declares (it loads the same file)."
  type        = map(string)

  validation {
    condition     = alltrue([for k in keys(var.secrets) : can(regex("^[A-Z_][A-Z0-9_]*$", k))])
    error_message = "Secret names must be environment variable names: uppercase letters, digits and underscores."
  }

  validation {
    condition = alltrue([for v in values(var.secrets) : can(regex(
      "^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?|ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+)$", v
    ))])
    error_message = "Each secret must be a full, non-empty Secrets Manager secret ARN (with its 6-character suffix) or an SSM parameter ARN."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys of the secrets, if any (decrypt through Secrets Manager or SSM only)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", k))])
    error_message = "Each KMS key must be a key ARN."
  }
}

variable "environment" {
  description = "Plain environment variables (SLACK_CHANNEL, SHOP_URL). PROBER_REGION and PROMETHEUS_URL are set by the module."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^[A-Z_][A-Z0-9_]*$", k)) && !contains(["PROBER_REGION", "PROMETHEUS_URL"], k)])
    error_message = "Environment variable names must be uppercase letters, digits and underscores; PROBER_REGION and PROMETHEUS_URL are set by the module."
  }

  validation {
    condition     = length(setintersection(keys(var.environment), keys(var.secrets))) == 0
    error_message = "A variable cannot be both in environment and in secrets."
  }
}

variable "external_url" {
  description = "The evaluator's status page address as pages link it (--external-url), e.g. behind your own authenticating proxy; null: pages carry no status page link that works from outside (the task has no inbound path)."
  type        = string
  default     = null

  validation {
    condition     = var.external_url == null || can(regex("^https?://[^\\s]+$", var.external_url))
    error_message = "The external_url must be an http(s) URL or null."
  }
}

variable "egress_tcp_ports" {
  description = "TCP ports the evaluator may connect to anywhere: 443 for AMP, PagerDuty, Slack and AWS APIs. Add 9093 for an Alertmanager notifier."
  type        = list(number)
  default     = [443]

  validation {
    condition     = length(var.egress_tcp_ports) > 0 && alltrue([for p in var.egress_tcp_ports : p >= 1 && p <= 65535 && p == floor(p)])
    error_message = "Ports must be whole numbers from 1 to 65535."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the evaluator's logs."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN for the log group, or null."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.log_kms_key_arn))
    error_message = "The log_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "log_level" {
  description = "The evaluator's --log-level."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "extra_args" {
  description = "More flags for `prober run` (--log-search-url ...). The module sets --role, --region, --config, --listen, --state-dir and --external-url."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.extra_args : !contains(["--role", "--region", "--config", "--listen", "--state-dir", "--external-url", "--web.config.file"], split("=", a)[0])])
    error_message = "The extra_args cannot set --role, --region, --config, --listen, --state-dir or --external-url (the module sets them), nor --web.config.file: the prober listens on 127.0.0.1 inside the task, where only the metrics agent reaches it, and the agent scrapes without credentials (see the README, Security)."
  }
}

variable "desired_count" {
  description = "1, or 0 to stop paging from AWS. A second replica would post every Slack message twice (see the README, Running evaluators as replicas)."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.desired_count)
    error_message = "The desired_count must be 0 or 1."
  }
}

variable "cpu" {
  description = "Fargate CPU units for the evaluator, the SigV4 proxy, the config fetcher and the metrics agent."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.cpu)
    error_message = "The cpu must be 256, 512, 1024, 2048 or 4096."
  }
}

variable "memory" {
  description = "Fargate memory in MiB (2x to 8x the CPU units, at most 30720)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= var.cpu * 2 && var.memory <= min(var.cpu * 8, 30720) && var.memory % 512 == 0
    error_message = "The memory must be a multiple of 512 MiB between 2x and 8x the cpu units (at most 30720)."
  }
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; the image must be built for it."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64."
  }
}

variable "scrape_interval" {
  description = "How often the metrics agent scrapes the evaluator's own metrics (alerts, notifications, outbox)."
  type        = string
  default     = "15s"

  validation {
    condition     = contains(["10s", "15s", "30s", "60s"], var.scrape_interval)
    error_message = "The scrape_interval must be one of 10s, 15s, 30s or 60s."
  }
}

variable "wait_for_steady_state" {
  description = "Make terraform apply wait until the evaluator runs (and fail when the circuit breaker rolls it back)."
  type        = bool
  default     = true
}

variable "config_fetch_image" {
  description = "The AWS CLI image of the config-fetch init container. Pin a version or digest."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.32.9"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_][A-Za-z0-9._-]*|@sha256:[0-9a-f]{64})$", var.config_fetch_image)) && !endswith(var.config_fetch_image, ":latest")
    error_message = "The config_fetch_image must name a version tag or digest, not latest."
  }
}

variable "metrics_agent_image" {
  description = "Prometheus image for the agent sidecar (remote-writes the evaluator's own metrics). Pin a version or digest."
  type        = string
  default     = "quay.io/prometheus/prometheus:v3.5.0"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_][A-Za-z0-9._-]*|@sha256:[0-9a-f]{64})$", var.metrics_agent_image)) && !endswith(var.metrics_agent_image, ":latest")
    error_message = "The metrics_agent_image must name a version tag or digest, not latest."
  }
}

variable "sigv4_proxy_image" {
  description = "The aws-sigv4-proxy image: it signs the evaluator's PromQL queries for AMP with the task role (the prober itself speaks only bearer or basic auth). Pin a version or digest."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-sigv4-proxy:1.11.1"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_][A-Za-z0-9._-]*|@sha256:[0-9a-f]{64})$", var.sigv4_proxy_image)) && !endswith(var.sigv4_proxy_image, ":latest")
    error_message = "The sigv4_proxy_image must name a version tag or digest, not latest."
  }
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) > 0 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "Tag keys must be 1 to 128 characters and not start with aws:; values at most 256 characters."
  }
}
