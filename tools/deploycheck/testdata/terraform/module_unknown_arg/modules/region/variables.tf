variable "region" {
  description = "required: no default"
  type        = string
}

variable "log_retention_days" {
  type    = number
  default = 30
}
