output "bucket" {
  value = module.region_a.config_bucket_name
}
