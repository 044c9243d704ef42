# Configuration delivery: probes.yaml and the flows live in a versioned S3
# bucket in this region. Every upload makes a new object version; the task
# definition names the exact versions (CONFIG_OBJECTS), so a changed flow is a
# new task definition revision that ECS rolls out, and the deployment circuit
# breaker rolls back to the previous revision, with the previous config, when
# the prober refuses the new one (it exits 2 on a bad configuration). No image
# rebuild is involved.

locals {
  config_prefix = "config/"

  config_files = toset(concat(["probes.yaml"], flatten([
    for pattern in var.config_files : tolist(fileset(var.config_dir, pattern))
  ])))
}

resource "aws_s3_bucket" "config" {
  bucket = "${var.name}-config-${local.account_id}-${var.region}"

  tags = merge(local.tags, { Name = "${local.prefix}-config" })
}

resource "aws_s3_bucket_versioning" "config" {
  bucket = aws_s3_bucket.config.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "config" {
  bucket = aws_s3_bucket.config.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "config" {
  bucket = aws_s3_bucket.config.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "config" {
  bucket = aws_s3_bucket.config.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "config" {
  bucket = aws_s3_bucket.config.id

  rule {
    id     = "expire-replaced-config"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days           = var.config_version_retention_days
      newer_noncurrent_versions = 10
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.config]
}

data "aws_iam_policy_document" "config_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.config.arn,
      "${aws_s3_bucket.config.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "config" {
  bucket = aws_s3_bucket.config.id
  policy = data.aws_iam_policy_document.config_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.config]
}

resource "aws_s3_object" "config" {
  for_each = local.config_files

  bucket       = aws_s3_bucket.config.id
  key          = "${local.config_prefix}${each.value}"
  source       = "${var.config_dir}/${each.value}"
  source_hash  = filemd5("${var.config_dir}/${each.value}")
  content_type = "application/yaml"

  lifecycle {
    precondition {
      # The fetch script splits CONFIG_OBJECTS on spaces and "@".
      condition     = can(regex("^[A-Za-z0-9._/-]+$", each.value))
      error_message = "Config file ${each.value}: paths may hold only letters, digits, dot, dash, underscore and slash."
    }
  }

  depends_on = [
    aws_s3_bucket_versioning.config,
    aws_s3_bucket_server_side_encryption_configuration.config,
  ]
}

locals {
  # key@version of every config object, sorted: what this task definition runs.
  config_objects = { for f, o in aws_s3_object.config : o.key => o.version_id }
}
