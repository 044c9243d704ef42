variable "region" {
  type = string
}

output "label" {
  value = var.region
}
