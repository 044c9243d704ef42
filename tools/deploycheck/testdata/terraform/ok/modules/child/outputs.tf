output "out" {
  value = "${var.required_input}${coalesce(var.optional_input, "")}"
}
