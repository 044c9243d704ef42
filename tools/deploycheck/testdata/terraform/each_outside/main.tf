locals {
  name = each.key
}
