output "log_group_name" {
  value = "/prober/${var.region}"
}
