module "eu" {
  source = "./modules/regoin"
  region = "eu-west-1"
}
