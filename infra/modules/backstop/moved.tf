# The key, bucket and topic became optional (kms_key_arn, bucket_name, alert_topic_arn): state
# from before moves to index 0, so an upgrade replaces nothing.

moved {
  from = aws_kms_key.this
  to   = aws_kms_key.this[0]
}

moved {
  from = aws_kms_alias.this
  to   = aws_kms_alias.this[0]
}

moved {
  from = aws_sns_topic.this
  to   = aws_sns_topic.this[0]
}

moved {
  from = aws_s3_bucket.this
  to   = aws_s3_bucket.this[0]
}

moved {
  from = aws_s3_bucket_versioning.this
  to   = aws_s3_bucket_versioning.this[0]
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.this
  to   = aws_s3_bucket_server_side_encryption_configuration.this[0]
}

moved {
  from = aws_s3_bucket_public_access_block.this
  to   = aws_s3_bucket_public_access_block.this[0]
}

moved {
  from = aws_s3_bucket_policy.this
  to   = aws_s3_bucket_policy.this[0]
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.this
  to   = aws_s3_bucket_lifecycle_configuration.this[0]
}

moved {
  from = aws_s3_bucket_logging.this
  to   = aws_s3_bucket_logging.this[0]
}

moved {
  from = aws_s3_bucket.logs
  to   = aws_s3_bucket.logs[0]
}

moved {
  from = aws_s3_bucket_versioning.logs
  to   = aws_s3_bucket_versioning.logs[0]
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.logs
  to   = aws_s3_bucket_server_side_encryption_configuration.logs[0]
}

moved {
  from = aws_s3_bucket_public_access_block.logs
  to   = aws_s3_bucket_public_access_block.logs[0]
}

moved {
  from = aws_s3_bucket_policy.logs
  to   = aws_s3_bucket_policy.logs[0]
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.logs
  to   = aws_s3_bucket_lifecycle_configuration.logs[0]
}
