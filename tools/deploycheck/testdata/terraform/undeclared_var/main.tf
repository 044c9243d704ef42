variable "region" {
  type = string
}

resource "aws_s3_bucket" "b" {
  bucket = "prober-${var.regoin}"
}
