module "eu" {
  source = "./modules/region"
  region = "eu-west-1"
}

output "logs" {
  value = module.eu.log_group_name
}

output "bucket" {
  value = module.eu.config_bucket_name
}
