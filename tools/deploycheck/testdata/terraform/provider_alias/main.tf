provider "aws" {
  alias  = "home"
  region = "eu-west-1"
}

resource "aws_s3_bucket" "b" {
  provider = aws.hoem
  bucket   = "b"
}
