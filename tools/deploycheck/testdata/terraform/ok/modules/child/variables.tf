variable "required_input" {
  type = string
}

variable "optional_input" {
  type    = string
  default = null
}
