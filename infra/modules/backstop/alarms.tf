################################################################################
# Alarms to the alert topic, and a dashboard
################################################################################

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each            = local.functions
  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} function failed; its own alert (if it could send one) says why."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
  tags                = var.tags
}

# Events nobody handled: schedule deliveries that failed every retry, and alerts the notifier
# could not deliver (kept in its own queue, so a Slack outage cannot loop through the topic).
resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = {
    schedules = aws_sqs_queue.dead_letters.name
    notifier  = aws_sqs_queue.notifier_dead_letters.name
  }
  alarm_name          = "${var.name}-${each.key}-dead-letters"
  alarm_description   = "Messages are waiting in ${each.value}: ${each.key == "notifier" ? "alerts that did not reach Slack (email still had them)" : "scheduled jobs that never ran"}. Read them, fix the cause, then purge the queue."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  tags                = var.tags
}

# A dead man's switch: the monitor publishes BackupAgeSeconds every hour, so a missing metric
# means the monitor (or its schedule) stopped, which is as bad as an old backup.
resource "aws_cloudwatch_metric_alarm" "backup_age" {
  for_each            = var.databases
  alarm_name          = "${var.name}-${each.key}-backup-age"
  alarm_description   = "The newest backup of ${each.key} is older than ${var.freshness_hours.critical} h, or the monitor stopped reporting."
  namespace           = "Backstop"
  metric_name         = "BackupAgeSeconds"
  dimensions          = { DatabaseId = each.key }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.freshness_hours.critical * 3600
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "verification" {
  for_each            = var.databases
  alarm_name          = "${var.name}-${each.key}-verification"
  alarm_description   = "A verification of a ${each.key} backup failed."
  namespace           = "Backstop"
  metric_name         = "VerifySucceeded"
  dimensions          = { DatabaseId = each.key }
  statistic           = "Minimum"
  period              = 86400
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      for i, metric in [
        { name = "BackupAgeSeconds", title = "Backup age (s)", stat = "Maximum" },
        { name = "BackupDurationSeconds", title = "Backup duration (s)", stat = "Maximum" },
        { name = "BackupBytes", title = "Backup size (bytes)", stat = "Maximum" },
        { name = "RestoreSeconds", title = "Measured RTO: test restore (s)", stat = "Maximum" },
        { name = "HealthStatus", title = "Health (0 ok, 1 warning, 2 critical, 3 unknown)", stat = "Maximum" },
        { name = "VerifySucceeded", title = "Verification passed (1) / failed (0)", stat = "Minimum" },
        # With a pooler configured for a database (BACKSTOP_DATABASES "pooler"), the monitor's figures of it.
        { name = "PoolerClientsWaiting", title = "Pooler: clients waiting for a server connection", stat = "Maximum" },
        { name = "PoolerMaxWaitSeconds", title = "Pooler: longest wait (s)", stat = "Maximum" },
        ] : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = metric.title
          region  = local.region
          stat    = metric.stat
          period  = 3600
          view    = "timeSeries"
          metrics = [for id in keys(var.databases) : ["Backstop", metric.name, "DatabaseId", id]]
        }
      }
    ]
  })
}

# With point-in-time recovery, the newest recovery point: every drain publishes its age, so a
# missing metric means the drains stopped, which loses as much as an old point.
resource "aws_cloudwatch_metric_alarm" "recovery_point_age" {
  for_each            = var.point_in_time_recovery.enabled ? var.databases : {}
  alarm_name          = "${var.name}-${each.key}-recovery-point-age"
  alarm_description   = "The newest point-in-time recovery point of ${each.key} is older than ${var.point_in_time_recovery.alarm_after_minutes} minutes, or the drains stopped reporting."
  namespace           = "Backstop"
  metric_name         = "RecoveryPointAgeSeconds"
  dimensions          = { DatabaseId = each.key }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = max(1, floor(var.point_in_time_recovery.alarm_after_minutes / 5))
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.point_in_time_recovery.alarm_after_minutes * 60
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
  tags                = var.tags
}

# WAL the change stream's slot holds back on the server, before the drain's cap drops it.
resource "aws_cloudwatch_metric_alarm" "stream_retained_wal" {
  for_each            = var.point_in_time_recovery.enabled ? var.databases : {}
  alarm_name          = "${var.name}-${each.key}-stream-retained-wal"
  alarm_description   = "The change stream's slot on ${each.key} holds back more WAL than the warning level; past max_slot_wal_mib it is dropped and a new stream started."
  namespace           = "Backstop"
  metric_name         = "StreamRetainedBytes"
  dimensions          = { DatabaseId = each.key }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = coalesce(var.point_in_time_recovery.warn_slot_wal_mib, var.point_in_time_recovery.max_slot_wal_mib / 2) * 1048576
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  tags                = var.tags
}
