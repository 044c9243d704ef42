data "aws_iam_policy_document" "assume" {}

resource "aws_iam_role_policy" "p" {
  role   = "r"
  policy = data.aws_iam_policy_document.task.json
}

output "assume" {
  value = data.aws_iam_policy_document.assume.json
}
