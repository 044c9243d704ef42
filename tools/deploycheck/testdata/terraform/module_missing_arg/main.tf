module "eu" {
  source             = "./modules/region"
  log_retention_days = 14
}
