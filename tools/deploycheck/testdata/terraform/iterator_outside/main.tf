variable "ports" {
  type = list(number)
}

resource "aws_security_group" "sg" {
  dynamic "ingress" {
    for_each = var.ports
    iterator = port
    content {
      from_port = port.value
      to_port   = ingress.value
    }
  }
}
