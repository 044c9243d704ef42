# Every construct the checker must accept.
terraform {
  required_providers {
    aws = {
      source                = "hashicorp/aws"
      configuration_aliases = [aws.other]
    }
  }
}

provider "aws" {
  alias  = "home"
  region = var.region
}

variable "region" {
  type    = string
  default = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}-", var.region))
    error_message = "A region name."
  }
}

variable "names" {
  type = map(object({ port = number, cidrs = list(string) }))
}

locals {
  prefix = "x-${var.region}"
  ports  = [for k, v in var.names : v.port if k != ""]
  doc    = <<-EOT
    %{for n in keys(var.names)}name ${n} in ${path.module} (${terraform.workspace})
    %{endfor}
  EOT
}

resource "aws_security_group" "sg" {
  count    = 2
  provider = aws.home
  name     = "${local.prefix}-${count.index}"

  dynamic "ingress" {
    for_each = var.names
    content {
      from_port   = ingress.value.port
      cidr_blocks = ingress.value.cidrs
      description = ingress.key
    }
  }

  dynamic "egress" {
    for_each = var.names
    iterator = rule
    content {
      from_port = rule.value.port
    }
  }

  lifecycle {
    ignore_changes = [tags, description]
    postcondition {
      condition     = self.name != ""
      error_message = "named"
    }
  }

  provisioner "local-exec" {
    command = "echo ${self.id}"
  }
}

resource "aws_route" "r" {
  for_each       = var.names
  route_table_id = each.key
  gateway_id     = aws_security_group.sg[0].id
  cidr_block     = each.value.cidrs[0]
  depends_on     = [module.child, aws_security_group.sg]
}

data "aws_iam_policy_document" "doc" {
  statement {
    resources = aws_security_group.sg[*].arn
  }
}

module "child" {
  source = "./modules/child"
  count  = 1
  providers = {
    aws = aws.home
  }

  required_input = data.aws_iam_policy_document.doc.json
}

output "child_out" {
  value = module.child[0].out
}

output "whole" {
  value = { for k, v in module.child : k => v.out }
}

check "reachable" {
  data "http" "probe" {
    url = "https://example.com/${local.prefix}"
  }

  assert {
    condition     = data.http.probe.status_code == 200
    error_message = "unreachable"
  }
}

moved {
  from = aws_security_group.old
  to   = aws_security_group.sg
}
