# The evaluator's alert state and notification outbox (bbolt, fsynced) must
# outlive its task: a page queued when a task is replaced (a deployment, a
# Fargate retirement) is sent by the next task, and a firing alert keeps its
# history. Fargate's own storage dies with the task, so the state lives on an
# encrypted EFS file system, mounted over TLS through an access point that
# pins uid/gid 65532 (the image's nonroot user) and a private directory.
# Deployments stop the old task before starting the new one, so one process
# holds the database at a time.

resource "aws_efs_file_system" "state" {
  encrypted        = true
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  tags = merge(local.tags, { Name = "${local.prefix}-evaluator-state" })
}

resource "aws_efs_access_point" "state" {
  file_system_id = aws_efs_file_system.state.id

  posix_user {
    uid = 65532
    gid = 65532
  }

  root_directory {
    path = "/evaluator"

    creation_info {
      owner_uid   = 65532
      owner_gid   = 65532
      permissions = "0700"
    }
  }

  tags = merge(local.tags, { Name = "${local.prefix}-evaluator-state" })
}

data "aws_iam_policy_document" "state" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["*"]
    resources = [
      aws_efs_file_system.state.arn,
    ]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "EvaluatorThroughAccessPoint"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.state.arn]

    principals {
      type        = "AWS"
      identifiers = [module.task.task_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.state.arn]
    }
  }
}

resource "aws_efs_file_system_policy" "state" {
  file_system_id = aws_efs_file_system.state.id
  policy         = data.aws_iam_policy_document.state.json
}

resource "aws_security_group" "efs" {
  name        = "${local.prefix}-evaluator-state"
  description = "prober evaluator state (EFS): NFS from the evaluator task only"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${local.prefix}-evaluator-state" })
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_evaluator" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the evaluator task"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.task.id

  tags = local.tags
}

resource "aws_efs_mount_target" "state" {
  count = length(var.subnet_ids)

  file_system_id  = aws_efs_file_system.state.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [aws_security_group.efs.id]
}
