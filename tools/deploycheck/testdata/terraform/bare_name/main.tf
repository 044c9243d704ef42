variable "kind" {
  type = string
}

output "kind" {
  value = kind
}
