terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }

  # Keep the state in the monitoring account (or your usual state account),
  # for example:
  #
  # backend "s3" {
  #   bucket       = "example-terraform-state"
  #   key          = "prober/three-regions.tfstate"
  #   region       = "eu-west-1"
  #   use_lockfile = true
  # }
}
