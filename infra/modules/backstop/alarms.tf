################################################################################
# Alarms to the alert topic
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
  alarm_actions       = [local.alert_topic_arn]
  ok_actions          = [local.alert_topic_arn]
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
  alarm_actions       = [local.alert_topic_arn]
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
  alarm_actions       = [local.alert_topic_arn]
  ok_actions          = [local.alert_topic_arn]
  tags                = var.tags
}

# The RPO against its objective, as the monitor judges it each hour (RpoMet: 1 met or at risk,
# 0 missed). The monitor's own alert says why and what brings it back; the alarm puts it on the
# dashboard's alarm panel. No data is not a breach here: the backup age alarm is the dead man's
# switch for the monitor.
resource "aws_cloudwatch_metric_alarm" "rpo" {
  for_each            = var.databases
  alarm_name          = "${var.name}-${each.key}-rpo"
  alarm_description   = "The RPO objective of ${each.key} (${local.objectives[each.key].rpo}) is missed: its newest recovery point is older, or there is none. The monitor's alert names the job that stopped and what brings it back."
  namespace           = "Backstop"
  metric_name         = "RpoMet"
  dimensions          = { DatabaseId = each.key }
  statistic           = "Minimum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alert_topic_arn]
  ok_actions          = [local.alert_topic_arn]
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
  alarm_actions       = [local.alert_topic_arn]
  tags                = var.tags
}

################################################################################
# The dashboard: every alarm's state on top, then one row per database (backup age against
# its thresholds, RPO and RTO against their objectives, stream lag, sizes), then the figures
# across databases.
# Metrics are the ones the functions publish (namespace Backstop, dimension DatabaseId).
################################################################################

locals {
  # Every alarm the module makes, per database first. An alarm widget takes 100 at most.
  dashboard_alarms = concat(
    [for alarm in aws_cloudwatch_metric_alarm.backup_age : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.rpo : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.recovery_point_age : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.stream_retained_wal : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.verification : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.function_errors : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.dead_letters : alarm.arn],
  )
  dashboard_alarm_widgets = [
    for i, alarms in chunklist(local.dashboard_alarms, 100) : {
      type   = "alarm"
      x      = 0
      y      = i * 6
      width  = 24
      height = 6
      properties = {
        title  = "Alarms${length(local.dashboard_alarms) > 100 ? " (${i + 1})" : ""}"
        alarms = alarms
        sortBy = "stateUpdatedTimestamp"
      }
    }
  ]
  dashboard_rows_y = length(local.dashboard_alarm_widgets) * 6

  pitr              = var.point_in_time_recovery.enabled
  warn_slot_wal_mib = coalesce(var.point_in_time_recovery.warn_slot_wal_mib, var.point_in_time_recovery.max_slot_wal_mib / 2)
  metric_widget = {
    region = local.region
    view   = "timeSeries"
    stat   = "Maximum"
    legend = { position = "bottom" }
  }
  # The RPO and RTO widgets draw each figure in minutes when its objective is 4 h or less, in
  # hours above.
  objective_units = {
    for id, o in local.objectives : id => {
      for figure in ["rpo", "rto"] : figure => (
        o["${figure}_seconds"] <= 4 * 3600 ? { name = "minutes", seconds = 60 } : { name = "hours", seconds = 3600 }
      )
    }
  }

  # One row per database; a widget's place in its row is set below. Each figure is metric math
  # over the published metric (ids: the raw metric, hidden; the expression in the unit shown).
  dashboard_database_rows = {
    for id in keys(var.databases) : id => concat(
      [{
        type = "metric"
        properties = merge(local.metric_widget, {
          title  = "${id}: backup age"
          period = 3600
          metrics = [
            [{ id = "hours", expression = "age / 3600", label = "newest backup's age (hours)" }],
            ["Backstop", "BackupAgeSeconds", "DatabaseId", id, { id = "age", visible = false }],
          ]
          yAxis = { left = { label = "hours", min = 0, showUnits = false } }
          annotations = { horizontal = [
            { label = "warning: ${var.freshness_hours.warning} h", value = var.freshness_hours.warning, color = "#ff7f0e" },
            { label = "critical: ${var.freshness_hours.critical} h (alarm)", value = var.freshness_hours.critical, color = "#d62728" },
          ] }
        })
      }],
      # The RPO: the newest recovery point's age (a backup's, or with point-in-time recovery the
      # newest point the change stream reaches) as the monitor judges it each hour, and with a
      # change stream also at each drain, against the objective.
      [for u in [local.objective_units[id].rpo] : {
        type = "metric"
        properties = merge(local.metric_widget, {
          title  = "${id}: RPO against its objective (${local.objectives[id].rpo})"
          period = local.pitr ? 300 : 3600
          metrics = concat(
            [[{ id = "rpo", expression = "rposeconds / ${u.seconds}", label = "RPO: newest recovery point's age (${u.name})" }]],
            [for enabled in [local.pitr] : [{ id = "drained", expression = "pointage / ${u.seconds}", label = "at each drain (${u.name})" }] if enabled],
            [[{ id = "objective", expression = "objectiveseconds / ${u.seconds}", label = "objective, as the monitor judges it", color = "#7f7f7f" }]],
            [
              ["Backstop", "RpoSeconds", "DatabaseId", id, { id = "rposeconds", visible = false }],
              ["Backstop", "RpoObjectiveSeconds", "DatabaseId", id, { id = "objectiveseconds", visible = false }],
            ],
            [for enabled in [local.pitr] : ["Backstop", "RecoveryPointAgeSeconds", "DatabaseId", id, { id = "pointage", visible = false }] if enabled],
          )
          yAxis = { left = { label = u.name, min = 0, showUnits = false } }
          annotations = { horizontal = concat(
            [{ label = "objective: ${local.objectives[id].rpo} (missed above)", value = local.objectives[id].rpo_seconds / u.seconds, color = "#d62728", fill = "above" }],
            [
              for at_risk in [local.late_after[local.recovery_point_job]] :
              { label = "at risk: the run due has not landed (${local.seconds_text[tostring(at_risk)]})", value = at_risk / u.seconds, color = "#ff7f0e" }
              if at_risk < local.objectives[id].rpo_seconds
            ],
            [for enabled in [local.pitr] : {
              label = "alarm: ${var.point_in_time_recovery.alarm_after_minutes} min without a new point", value = var.point_in_time_recovery.alarm_after_minutes * 60 / u.seconds, color = "#9467bd"
            } if enabled],
          ) }
        })
      }],
      # The RTO: the newest passed test restore's time until the database was ready (loaded for
      # results from before readiness was measured), against the objective; at risk from 80 % of
      # it (RTO_AT_RISK_SHARE in shared/src/objectives).
      [for u in [local.objective_units[id].rto] : {
        type = "metric"
        properties = merge(local.metric_widget, {
          title = (var.restore_verification.enabled
            ? "${id}: RTO, by the scheduled test restore, against its objective (${local.objectives[id].rto})"
            : "${id}: RTO against its objective (${local.objectives[id].rto}), from test restores run by hand: restore_verification is off"
          )
          period = 86400
          start  = "-P30D"
          metrics = [
            [{ id = "ready", expression = "rtoseconds / ${u.seconds}", label = "ready: the RTO, newest passed test restore (${u.name})" }],
            [{ id = "loadedunits", expression = "loaded / ${u.seconds}", label = "loaded: rows, indexes, constraints (${u.name})" }],
            [{ id = "objective", expression = "objectiveseconds / ${u.seconds}", label = "objective, as the monitor judges it", color = "#7f7f7f" }],
            ["Backstop", "RtoSeconds", "DatabaseId", id, { id = "rtoseconds", visible = false }],
            ["Backstop", "RestoreLoadedSeconds", "DatabaseId", id, { id = "loaded", visible = false }],
            ["Backstop", "RtoObjectiveSeconds", "DatabaseId", id, { id = "objectiveseconds", visible = false }],
          ]
          yAxis = { left = { label = u.name, min = 0, showUnits = false } }
          annotations = { horizontal = [
            { label = "objective: ${local.objectives[id].rto} (missed above)", value = local.objectives[id].rto_seconds / u.seconds, color = "#d62728", fill = "above" },
            { label = "at risk: 80 % of it", value = 0.8 * local.objectives[id].rto_seconds / u.seconds, color = "#ff7f0e" },
          ] }
        })
      }],
      [for enabled in [local.pitr] : {
        type = "metric"
        properties = merge(local.metric_widget, {
          title  = "${id}: change stream slot"
          period = 300
          metrics = [
            [{ id = "lagmib", expression = "lag / 1048576", label = "lag: WAL not yet drained (MiB)" }],
            [{ id = "retainedmib", expression = "retained / 1048576", label = "WAL the slot holds back (MiB)" }],
            ["Backstop", "StreamLagBytes", "DatabaseId", id, { id = "lag", visible = false }],
            ["Backstop", "StreamRetainedBytes", "DatabaseId", id, { id = "retained", visible = false }],
          ]
          yAxis = { left = { label = "MiB", min = 0, showUnits = false } }
          annotations = { horizontal = [
            { label = "warning: ${local.warn_slot_wal_mib} MiB (alarm)", value = local.warn_slot_wal_mib, color = "#ff7f0e" },
            { label = "slot dropped: ${var.point_in_time_recovery.max_slot_wal_mib} MiB", value = var.point_in_time_recovery.max_slot_wal_mib, color = "#d62728" },
          ] }
        })
      } if enabled],
      [{
        type = "metric"
        properties = merge(local.metric_widget, {
          title  = "${id}: sizes"
          period = 3600
          metrics = [
            [{ id = "newestmib", expression = "newest / 1048576", label = "each backup as stored (MiB)" }],
            [{ id = "storedgib", expression = "stored / 1073741824", label = "all backups stored (GiB, right)", yAxis = "right" }],
            ["Backstop", "BackupBytes", "DatabaseId", id, { id = "newest", visible = false }],
            ["Backstop", "StoredBytes", "DatabaseId", id, { id = "stored", visible = false }],
          ]
          yAxis = {
            left  = { label = "MiB", min = 0, showUnits = false }
            right = { label = "GiB", min = 0, showUnits = false }
          }
        })
      }],
    )
  }
  dashboard_database_widgets = flatten([
    for i, id in keys(var.databases) : [
      for j, widget in local.dashboard_database_rows[id] : merge(widget, {
        x      = floor(24 * j / length(local.dashboard_database_rows[id]))
        y      = local.dashboard_rows_y + i * 6
        width  = floor(24 * (j + 1) / length(local.dashboard_database_rows[id])) - floor(24 * j / length(local.dashboard_database_rows[id]))
        height = 6
      })
    ]
  ])

  # Across databases, one line each: what the monitor and the other functions report besides.
  pooled_databases = [for id, db in var.databases : id if db.pooler_secret_arn != null]
  dashboard_summary = concat(
    [
      { title = "Health (0 ok, 1 warning, 2 critical, 3 unknown)", name = "HealthStatus", stat = "Maximum", period = 3600, unit = "status", ids = keys(var.databases) },
      { title = "Verification passed (1) or failed (0)", name = "VerifySucceeded", stat = "Minimum", period = 86400, unit = "1 passed, 0 failed", ids = keys(var.databases) },
      { title = "Backup duration", name = "BackupDurationSeconds", stat = "Maximum", period = 3600, unit = "seconds", ids = keys(var.databases) },
    ],
    [for ids in [local.pooled_databases] : {
      title = "Pooler: clients waiting for a server connection", name = "PoolerClientsWaiting", stat = "Maximum", period = 300, unit = "clients", ids = ids
    } if length(ids) > 0],
  )
  dashboard_summary_widgets = [
    for j, figure in local.dashboard_summary : {
      type   = "metric"
      x      = floor(24 * j / length(local.dashboard_summary))
      y      = local.dashboard_rows_y + length(var.databases) * 6
      width  = floor(24 * (j + 1) / length(local.dashboard_summary)) - floor(24 * j / length(local.dashboard_summary))
      height = 6
      properties = merge(local.metric_widget, {
        title   = figure.title
        stat    = figure.stat
        period  = figure.period
        metrics = [for id in figure.ids : ["Backstop", figure.name, "DatabaseId", id, { label = id }]]
        yAxis   = { left = { label = figure.unit, min = 0, showUnits = false } }
      })
    }
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    start          = "-P7D"
    periodOverride = "inherit"
    widgets        = concat(local.dashboard_alarm_widgets, local.dashboard_database_widgets, local.dashboard_summary_widgets)
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
  alarm_actions       = [local.alert_topic_arn]
  ok_actions          = [local.alert_topic_arn]
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
  alarm_actions       = [local.alert_topic_arn]
  tags                = var.tags
}
