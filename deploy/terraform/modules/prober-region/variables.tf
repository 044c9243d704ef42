# Inputs of one region's prober (role probe). Every variable is typed,
# described and validated; the README's "Deployment" section explains them
# for the three-region example that calls this module.

variable "name" {
  description = "Prefix of every resource name (ECS cluster and service, IAM roles, log group, config bucket, VPC). 2 to 20 lowercase letters, digits or dashes."
  type        = string
  default     = "prober"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "The name must be 2 to 20 characters of lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "AWS region this module deploys into (eu-west-1). Must be the region of the aws provider passed to the module; checked at plan time."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-west-1, ap-south-1 or us-gov-west-1."
  }
}

variable "region_label" {
  description = "The prober's region label on every metric and log line (--region, PROBER_REGION). Defaults to the AWS region name. It must be one of the regions that probes.yaml's rules name (flow_failing.regions, absent.regions)."
  type        = string
  default     = null

  validation {
    condition     = var.region_label == null || can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", var.region_label))
    error_message = "The region label must be 1 to 63 lowercase letters, digits, dashes or underscores."
  }
}

variable "image" {
  description = "The prober image repository, without tag or digest: an ECR repository URI (123456789012.dkr.ecr.eu-west-1.amazonaws.com/prober) or any registry the tasks can reach through the NAT gateway (ghcr.io/example/prober). Built from the repository's Dockerfile."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$", var.image))
    error_message = "The image must be a repository reference without tag or digest, such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/prober."
  }
}

variable "image_tag" {
  description = "Which build of the image to run: a release version (v1.4.2, 1.4.2-rc.1) or an image digest (sha256:<64 hex>). Mutable tags such as latest are refused so that every region runs the same build and a rollback is a plan away."
  type        = string

  validation {
    condition     = can(regex("^(v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?|sha256:[0-9a-f]{64})$", var.image_tag))
    error_message = "The image tag must be a version such as v1.4.2 or 1.4.2-rc.1, or a digest sha256:<64 hex digits>; latest and other mutable tags are not accepted."
  }
}

variable "config_dir" {
  description = "Local directory holding probes.yaml and flows/, as `prober validate --config <dir>/probes.yaml` checks them. Uploaded to this region's versioned config bucket; each task definition pins the object versions it fetches."
  type        = string

  validation {
    condition     = fileexists("${var.config_dir}/probes.yaml")
    error_message = "The config_dir must contain probes.yaml."
  }
}

variable "config_files" {
  description = "Files under config_dir to deliver besides probes.yaml, as fileset() patterns relative to config_dir (flow files, CA bundles they name). Paths may hold letters, digits, dot, dash, underscore and slash."
  type        = list(string)
  default     = ["flows/**/*.yaml", "flows/**/*.yml"]

  validation {
    condition     = length(var.config_files) > 0 && alltrue([for p in var.config_files : length(trimspace(p)) > 0 && !startswith(p, "/")])
    error_message = "The config_files patterns must be non-empty and relative to config_dir."
  }
}

variable "config_version_retention_days" {
  description = "Days a replaced config object version is kept (the ten newest are always kept). Rolling back to a task definition older than this fails to fetch its config."
  type        = number
  default     = 90

  validation {
    condition     = var.config_version_retention_days >= 7 && var.config_version_retention_days == floor(var.config_version_retention_days)
    error_message = "Keep replaced config versions for at least 7 whole days."
  }
}

variable "secrets" {
  description = "Secrets given to the prober as environment variables: variable name => Secrets Manager secret ARN (optionally with a JSON key, arn:...:secret:name-AbCdEf:key::) or SSM SecureString parameter ARN. Only this task's execution role is granted to read them. Probe tasks page nothing: give them what the flows use (SHOP_PASSWORD), not the PagerDuty key."
  type        = map(string)
  default     = {}

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

variable "tracing" {
  description = "Send the probe's spans to an OTLP endpoint: endpoint is the collector's base URL (http://collector:4318 for OTLP/HTTP; OTEL_EXPORTER_OTLP_ENDPOINT), headers_secret_arn an optional Secrets Manager secret or SSM parameter whose value is OTEL_EXPORTER_OTLP_HEADERS (key=value,key2=value2, e.g. an API key), read like var.secrets (replica and KMS included). probes.yaml needs a tracing: block (`tracing: {}`). null: no spans."
  type = object({
    endpoint           = string
    headers_secret_arn = optional(string)
  })
  default = null

  validation {
    condition     = var.tracing == null || can(regex("^https?://[^/?#@\\s]+(/[^?#\\s]*)?$", try(var.tracing.endpoint, "")))
    error_message = "The tracing.endpoint must be an http(s) URL without credentials, e.g. http://otel-collector.internal:4318."
  }

  validation {
    condition = try(var.tracing.headers_secret_arn, null) == null || can(regex(
      "^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?|ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+)$", var.tracing.headers_secret_arn
    ))
    error_message = "The tracing.headers_secret_arn must be a full Secrets Manager secret ARN (with its 6-character suffix) or an SSM parameter ARN."
  }

  validation {
    condition     = !contains(keys(var.secrets), "OTEL_EXPORTER_OTLP_HEADERS") && !contains(keys(var.environment), "OTEL_EXPORTER_OTLP_ENDPOINT") || var.tracing == null
    error_message = "With tracing set, OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS come from it, not from environment or secrets."
  }
}

variable "secrets_replicated" {
  description = "Read each Secrets Manager secret from its replica in this region (the same ARN with this region's name) instead of the region in the ARN, so that a region's tasks start without another region's Secrets Manager. Replicate the secrets first (aws secretsmanager replicate-secret-to-regions)."
  type        = bool
  default     = false
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys that encrypt the secrets, if any: the execution role may decrypt with them through Secrets Manager or SSM only. Empty when the secrets use the AWS managed key."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", k))])
    error_message = "Each KMS key must be a key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "environment" {
  description = "Plain (non-secret) environment variables for the prober, read by probes.yaml's $${env:NAME} (SHOP_URL, SLACK_CHANNEL). PROBER_REGION is set by the module."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^[A-Z_][A-Z0-9_]*$", k)) && k != "PROBER_REGION"])
    error_message = "Environment variable names must be uppercase letters, digits and underscores; PROBER_REGION is set by the module."
  }

  validation {
    condition     = length(setintersection(keys(var.environment), keys(var.secrets))) == 0
    error_message = "A variable cannot be both in environment and in secrets."
  }
}

variable "amp" {
  description = "The Amazon Managed Service for Prometheus workspace the metrics agent remote-writes to (usually in the home region): its ARN, its prometheus_endpoint (https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/) and its region."
  type = object({
    workspace_arn       = string
    prometheus_endpoint = string
    region              = string
  })

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:aps:[a-z0-9-]+:[0-9]{12}:workspace/ws-[0-9A-Za-z-]+$", var.amp.workspace_arn))
    error_message = "The amp.workspace_arn must be an AMP workspace ARN (arn:aws:aps:<region>:<account>:workspace/ws-...)."
  }

  validation {
    condition     = can(regex("^https://aps-workspaces\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/workspaces/ws-[0-9A-Za-z-]+/$", var.amp.prometheus_endpoint))
    error_message = "The amp.prometheus_endpoint must be https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/ (the workspace's prometheus_endpoint attribute, with its trailing slash)."
  }

  validation {
    condition     = strcontains(var.amp.prometheus_endpoint, "aps-workspaces.${var.amp.region}.") && strcontains(var.amp.workspace_arn, ":aps:${var.amp.region}:")
    error_message = "The amp.region must be the region of the workspace ARN and of its endpoint."
  }
}

variable "scrape_interval" {
  description = "How often the metrics agent scrapes the prober on 127.0.0.1:8315 and so how fresh the evaluator's view is."
  type        = string
  default     = "15s"

  validation {
    condition     = contains(["10s", "15s", "30s", "60s"], var.scrape_interval)
    error_message = "The scrape_interval must be one of 10s, 15s, 30s or 60s."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the JSON logs of the prober, the config fetcher and the metrics agent."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the log group with (its key policy must allow logs.<region>.amazonaws.com), or null for CloudWatch's default encryption."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.log_kms_key_arn))
    error_message = "The log_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "log_level" {
  description = "The prober's --log-level."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "extra_args" {
  description = "More flags for `prober run` (--log-search-url https://...). The module sets --role, --region, --config, --listen and --state-dir itself."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.extra_args : !contains(["--role", "--region", "--config", "--listen", "--state-dir", "--web.config.file"], split("=", a)[0])])
    error_message = "The extra_args cannot set --role, --region, --config, --listen or --state-dir (the module sets them), nor --web.config.file: the prober listens on 127.0.0.1 inside the task, where only the metrics agent reaches it, and the agent scrapes without credentials (see the README, Security)."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the region's VPC, /16 to /22. It is split into public subnets (NAT gateways only) and private subnets (the tasks). Nothing peers with it, so every region may use the same range."
  type        = string
  default     = "10.60.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 22, false)
    error_message = "The vpc_cidr must be an IPv4 CIDR from /16 to /22, such as 10.60.0.0/16."
  }
}

variable "vpc_id" {
  description = "An existing VPC to run the task in, instead of the VPC this module creates (with its subnets, NAT gateways and S3 endpoint). Set subnet_ids with it; their routes must reach what the flows probe, the AWS APIs (ECS, Secrets Manager, CloudWatch Logs, AMP) and S3."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "The vpc_id must be a VPC id such as vpc-0a1b2c3d4e5f67890, or null to create the VPC."
  }
}

variable "subnet_ids" {
  description = "Subnets of vpc_id the task runs in (no public IP is assigned, so they need a NAT or endpoints for egress). Only with vpc_id."
  type        = list(string)
  default     = []

  validation {
    condition     = (var.vpc_id == null) == (length(var.subnet_ids) == 0)
    error_message = "Set vpc_id and subnet_ids together, or neither (the module then creates the VPC)."
  }

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "The subnet_ids must be subnet ids such as subnet-0a1b2c3d4e5f67890."
  }
}

variable "az_count" {
  description = "Availability zones to spread subnets over (the service runs one task; ECS places it in any of them)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 1 && var.az_count <= 3 && var.az_count == floor(var.az_count)
    error_message = "The az_count must be 1, 2 or 3."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per availability zone (survives a zone outage, costs more) instead of one for the region. With one, a zone outage silences the region and the absent rule says so."
  type        = bool
  default     = false
}

variable "cpu" {
  description = "Fargate task CPU units for the prober, the config fetcher and the metrics agent together."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.cpu)
    error_message = "The cpu must be 256, 512, 1024, 2048 or 4096."
  }
}

variable "memory" {
  description = "Fargate task memory in MiB; Fargate accepts 2x to 8x the CPU units (at most 30720)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= var.cpu * 2 && var.memory <= min(var.cpu * 8, 30720) && var.memory % 512 == 0
    error_message = "The memory must be a multiple of 512 MiB between 2x and 8x the cpu units (at most 30720), as Fargate accepts."
  }
}

variable "browser_contexts" {
  description = "Browser steps: the flows' browser_concurrency (0: no browser steps). The image must then be the Chromium variant (Dockerfile.browser), and the task's memory holds, besides the 1024 MiB of the prober and its sidecars, 512 MiB for Chromium's own processes and 384 MiB per context; GOMEMLIMIT is then half of what is left."
  type        = number
  default     = 0

  validation {
    condition     = var.browser_contexts >= 0 && var.browser_contexts <= 64 && floor(var.browser_contexts) == var.browser_contexts
    error_message = "The browser_contexts must be a whole number from 0 to 64."
  }

  validation {
    condition     = var.browser_contexts == 0 || var.memory >= 1024 + 512 + 384 * var.browser_contexts
    error_message = "With browser steps the task needs 1024 + 512 + 384 MiB per browser context of memory at least: raise memory (and cpu, Fargate asks for at least memory/8)."
  }
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 (Graviton, cheaper). The image must be built for it (docker buildx build --platform linux/arm64)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64."
  }
}

variable "desired_count" {
  description = "Tasks to run: 1, or 0 to pause the region. Two probers in one region would write the same series twice."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.desired_count)
    error_message = "The desired_count must be 0 or 1."
  }
}

variable "wait_for_steady_state" {
  description = "Make terraform apply wait until the new task runs (and fail if the deployment circuit breaker rolls it back, e.g. on a configuration the prober refuses)."
  type        = bool
  default     = true
}

variable "container_insights" {
  description = "Turn on CloudWatch Container Insights (enhanced) for the cluster; costs extra."
  type        = bool
  default     = false
}

variable "config_fetch_image" {
  description = "Image of the init container that fetches the pinned config object versions from S3 (the AWS CLI). Pin a version or digest."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.32.9"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_][A-Za-z0-9._-]*|@sha256:[0-9a-f]{64})$", var.config_fetch_image)) && !endswith(var.config_fetch_image, ":latest")
    error_message = "The config_fetch_image must name a version tag or digest, not latest."
  }
}

variable "metrics_agent_image" {
  description = "Image of the metrics sidecar: Prometheus in agent mode, scraping the prober on 127.0.0.1 and remote-writing to AMP with SigV4. Pin a version or digest."
  type        = string
  default     = "quay.io/prometheus/prometheus:v3.5.0"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_][A-Za-z0-9._-]*|@sha256:[0-9a-f]{64})$", var.metrics_agent_image)) && !endswith(var.metrics_agent_image, ":latest")
    error_message = "The metrics_agent_image must name a version tag or digest, not latest."
  }
}

variable "tags" {
  description = "Tags for every resource the module creates (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) > 0 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "Tag keys must be 1 to 128 characters and not start with aws:; values at most 256 characters."
  }
}
