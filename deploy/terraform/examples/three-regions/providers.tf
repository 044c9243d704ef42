# One aws provider per region, each assuming the deployment role in the
# monitoring account: the account that is not production, so that what fails
# for customers fails for the probers too. allowed_account_ids refuses to
# touch any other account, whatever credentials run terraform.

locals {
  deploy_role_arn = "arn:aws:iam::${var.monitoring_account_id}:role/${var.deploy_role_name}"
}

provider "aws" {
  alias               = "home"
  region              = var.regions[0]
  allowed_account_ids = [var.monitoring_account_id]

  assume_role {
    role_arn     = local.deploy_role_arn
    session_name = "prober-terraform"
    external_id  = var.deploy_role_external_id
  }

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias               = "second"
  region              = var.regions[1]
  allowed_account_ids = [var.monitoring_account_id]

  assume_role {
    role_arn     = local.deploy_role_arn
    session_name = "prober-terraform"
    external_id  = var.deploy_role_external_id
  }

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias               = "third"
  region              = var.regions[2]
  allowed_account_ids = [var.monitoring_account_id]

  assume_role {
    role_arn     = local.deploy_role_arn
    session_name = "prober-terraform"
    external_id  = var.deploy_role_external_id
  }

  default_tags {
    tags = local.tags
  }
}
