# The task role's policy (the roles themselves are in ../prober-ecs-service):
# read the config prefix of this region's bucket, remote-write to the AMP
# workspace. Nothing else. ECS cannot give containers of one task different
# roles: the prober container holds the same task credentials as the fetcher
# and the agent, which is why the task role is this narrow.

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ReadConfig"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.config.arn}/${local.config_prefix}*"]
  }

  statement {
    sid       = "RemoteWriteMetrics"
    actions   = ["aps:RemoteWrite"]
    resources = [var.amp.workspace_arn]
  }
}
