terraform {
  # 1.9: validation conditions may refer to other variables. OpenTofu 1.9 or
  # later reads this configuration as well.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.x: data.aws_region.current.region (name is deprecated there).
      version = ">= 6.0, < 7.0"
    }
  }
}
