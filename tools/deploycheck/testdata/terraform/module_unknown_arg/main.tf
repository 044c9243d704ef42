module "eu" {
  source         = "./modules/region"
  region         = "eu-west-1"
  retention_days = 14
}
