module "eu" {
  source = "./modules/region"
  region = "eu-west-1"
}

locals {
  labels = toset([module.eu.label])
  names  = toset(["b", "a"])
  label  = module.eu.label
}

check "labels" {
  assert {
    condition     = length(local.labels) == 1
    error_message = "${join(", ", sort(local.labels))} ${join(", ", sort(local.names))} ${join(", ", sort([for l in local.labels : tostring(l)]))}"
  }
}

output "direct" {
  value = sort(toset([local.label]))
}
