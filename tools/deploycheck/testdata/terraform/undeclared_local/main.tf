locals {
  prefix = "prober"
}

resource "aws_s3_bucket" "b" {
  bucket = local.prefx
}
