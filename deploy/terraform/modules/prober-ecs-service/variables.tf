# Inputs of the shared task and service. Only prober-region and
# prober-evaluator call this module: they validate what their callers give
# and pass it on, so the checks here guard the modules' own wiring.

variable "role" {
  description = "The prober's --role: probe (prober-region) or evaluate (prober-evaluator). Names the resources: <name_prefix>-probe... or <name_prefix>-evaluator..."
  type        = string

  validation {
    condition     = contains(["probe", "evaluate"], var.role)
    error_message = "The role must be probe or evaluate."
  }
}

variable "name_prefix" {
  description = "Prefix of the IAM role and task definition names (<name>-<region>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{2,60}$", var.name_prefix))
    error_message = "The name_prefix must be lowercase letters, digits and dashes."
  }
}

variable "service_name" {
  description = "Name of the ECS service."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.service_name))
    error_message = "The service_name must be letters, digits, dashes and underscores."
  }
}

variable "region" {
  description = "AWS region of the task; must be the aws provider's region (checked at plan time)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "The region must be an AWS region name such as eu-west-1."
  }
}

variable "region_label" {
  description = "The prober's --region label, the metrics agent's external region label and instance."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", var.region_label))
    error_message = "The region_label must be 1 to 63 lowercase letters, digits, dashes or underscores."
  }
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)

  validation {
    condition     = length(var.tags) <= 40
    error_message = "At most 40 tags."
  }
}

variable "image" {
  description = "The prober image repository, without tag or digest."
  type        = string

  validation {
    condition     = length(var.image) > 0 && !strcontains(var.image, "@")
    error_message = "The image must be a repository reference without digest."
  }
}

variable "image_tag" {
  description = "The image version or digest (sha256:...)."
  type        = string

  validation {
    condition     = length(var.image_tag) > 0
    error_message = "The image_tag must be set."
  }
}

variable "config_file" {
  description = "The prober's --config inside the task, under /etc/prober."
  type        = string

  validation {
    condition     = startswith(var.config_file, "/etc/prober/")
    error_message = "The config_file must be under /etc/prober/ (the fetched config volume)."
  }
}

variable "config_bucket" {
  description = "The bucket the config fetcher reads."
  type        = string

  validation {
    condition     = length(var.config_bucket) >= 3 && length(var.config_bucket) <= 63
    error_message = "The config_bucket must be an S3 bucket name."
  }
}

variable "config_objects" {
  description = "Config object key => version id: what the config fetcher fetches into /etc/prober."
  type        = map(string)

  validation {
    condition     = length(var.config_objects) > 0
    error_message = "The config_objects must name at least one object."
  }
}

variable "secrets" {
  description = "Environment variable => ARN as ECS injects it (valueFrom): a Secrets Manager secret (optionally with a JSON key) or an SSM parameter. Only the execution role may read them."
  type        = map(string)

  validation {
    condition     = alltrue([for arn in values(var.secrets) : contains(["secretsmanager", "ssm"], try(split(":", arn)[2], ""))])
    error_message = "Each secret must be a Secrets Manager or SSM parameter ARN."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys of the secrets (decrypt through Secrets Manager or SSM only)."
  type        = list(string)

  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:", k))])
    error_message = "Each KMS key must be a key ARN."
  }
}

variable "environment" {
  description = "Plain environment variables of the prober container, PROBER_REGION included; GOMEMLIMIT defaults to half the task's memory."
  type        = map(string)

  validation {
    condition     = contains(keys(var.environment), "PROBER_REGION")
    error_message = "The environment must set PROBER_REGION."
  }
}

variable "tracing" {
  description = "Send the prober's spans over OTLP (probes.yaml needs a tracing: block; `tracing: {}` takes all from here): endpoint is the collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT), headers_secret_arn a Secrets Manager secret or SSM parameter holding OTEL_EXPORTER_OTLP_HEADERS (e.g. x-api-key=...), or null. null: no spans."
  type = object({
    endpoint           = string
    headers_secret_arn = optional(string)
  })
  default = null

  validation {
    condition = var.tracing == null || (
      can(regex("^https?://[^/?#@\\s]+(/[^?#\\s]*)?$", try(var.tracing.endpoint, ""))) &&
      contains(["", "secretsmanager", "ssm"], try(split(":", coalesce(var.tracing.headers_secret_arn, "-"))[2], ""))
    )
    error_message = "The tracing.endpoint must be an http(s) URL without credentials, and tracing.headers_secret_arn a Secrets Manager or SSM parameter ARN, or null."
  }
}

variable "extra_args" {
  description = "Flags of `prober run` after the ones this module sets (--role, --region, --config, --listen, --state-dir, --log-level)."
  type        = list(string)

  validation {
    condition     = alltrue([for a in var.extra_args : !contains(["--role", "--region", "--config", "--listen", "--state-dir"], split("=", a)[0])])
    error_message = "The extra_args cannot set --role, --region, --config, --listen or --state-dir."
  }
}

variable "log_level" {
  description = "The prober's --log-level."
  type        = string

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "iam" {
  description = "The roles' descriptions and what the task role may do (task_policy_json: the caller's policy document)."
  type = object({
    execution_role_description = string
    task_role_description      = string
    task_policy_json           = string
  })

  validation {
    condition     = can(jsondecode(var.iam.task_policy_json))
    error_message = "The iam.task_policy_json must be a JSON policy document."
  }
}

variable "logs" {
  description = "The log group of every container: its name, retention in days and KMS key ARN (or null)."
  type = object({
    group_name     = string
    retention_days = number
    kms_key_arn    = string
  })

  validation {
    condition     = startswith(var.logs.group_name, "/prober/") && var.logs.retention_days > 0
    error_message = "The logs.group_name must start with /prober/ and logs.retention_days be positive."
  }
}

variable "amp" {
  description = "The AMP workspace the metrics agent remote-writes to: its prometheus_endpoint (with trailing slash) and region (workspace_arn is not used here)."
  type = object({
    workspace_arn       = string
    prometheus_endpoint = string
    region              = string
  })

  validation {
    condition     = endswith(var.amp.prometheus_endpoint, "/")
    error_message = "The amp.prometheus_endpoint must end with a slash."
  }
}

variable "scrape_interval" {
  description = "How often the metrics agent scrapes the prober."
  type        = string

  validation {
    condition     = contains(["10s", "15s", "30s", "60s"], var.scrape_interval)
    error_message = "The scrape_interval must be one of 10s, 15s, 30s or 60s."
  }
}

variable "agent_queue_config" {
  description = "The metrics agent's remote_write queue_config, or null for Prometheus's defaults."
  type        = map(number)
  default     = null

  validation {
    condition     = var.agent_queue_config == null || alltrue([for v in values(coalesce(var.agent_queue_config, {})) : v > 0])
    error_message = "The queue_config values must be positive."
  }
}

variable "sidecars" {
  description = "Container definitions started before the prober (it waits for them to START), each with a name; their logConfiguration is set here."
  type        = any
  default     = []

  validation {
    condition     = alltrue([for s in var.sidecars : can(s.name) && !contains(["config-fetch", "prober", "metrics-agent"], s.name)])
    error_message = "Each sidecar needs a name other than config-fetch, prober and metrics-agent."
  }
}

variable "state_volume" {
  description = "An EFS file system and access point mounted at the prober's --state-dir (the evaluator's alert state), or null."
  type = object({
    file_system_id  = string
    access_point_id = string
  })
  default = null

  validation {
    condition     = var.state_volume == null || startswith(try(var.state_volume.file_system_id, ""), "fs-")
    error_message = "The state_volume.file_system_id must be an EFS id (fs-...)."
  }
}

variable "config_fetch_image" {
  description = "Image of the config fetcher (AWS CLI with /bin/sh)."
  type        = string

  validation {
    condition     = length(var.config_fetch_image) > 0
    error_message = "The config_fetch_image must be set."
  }
}

variable "metrics_agent_image" {
  description = "Image of the metrics agent (Prometheus)."
  type        = string

  validation {
    condition     = length(var.metrics_agent_image) > 0
    error_message = "The metrics_agent_image must be set."
  }
}

variable "service_after" {
  description = "Ids the service must be created after (route table associations, EFS mount targets): a dependency across the module boundary."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.service_after) < 100
    error_message = "At most 99 ids."
  }
}

variable "task" {
  description = "The Fargate task's size: cpu units, memory in MiB, cpu_architecture (X86_64 or ARM64)."
  type = object({
    cpu              = number
    memory           = number
    cpu_architecture = string
  })

  validation {
    condition     = var.task.cpu >= 256 && var.task.memory >= 512 && contains(["X86_64", "ARM64"], var.task.cpu_architecture)
    error_message = "The task needs at least 256 cpu units and 512 MiB, on X86_64 or ARM64."
  }
}

variable "service" {
  description = "Where and how the ECS service runs: cluster_arn, subnet_ids (no public IP), security_group_ids, desired_count (0 or 1), wait_for_steady_state."
  type = object({
    cluster_arn           = string
    subnet_ids            = list(string)
    security_group_ids    = list(string)
    desired_count         = number
    wait_for_steady_state = bool
  })

  validation {
    condition     = length(var.service.subnet_ids) > 0 && length(var.service.security_group_ids) > 0 && contains([0, 1], var.service.desired_count)
    error_message = "The service needs subnets and security groups, and a desired_count of 0 or 1."
  }
}
