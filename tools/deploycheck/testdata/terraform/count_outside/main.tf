resource "aws_subnet" "s" {
  cidr_block = cidrsubnet("10.0.0.0/16", 8, count.index)
}
