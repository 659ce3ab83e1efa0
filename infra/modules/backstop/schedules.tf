################################################################################
# EventBridge Scheduler: each job for each database, retried, with a dead-letter queue
################################################################################

locals {
  jobs = merge(
    {
      for id, db in var.databases : "backup-${id}" => {
        function = "backup", expression = var.schedules.backup, database = id, runner = db.runner
        input    = { database = id, tier = "auto", run_id = "<aws.scheduler.execution-id>" }
      }
    },
    !var.point_in_time_recovery.enabled ? {} : {
      for id in keys(var.databases) : "stream-${id}" => {
        function = "stream", expression = var.point_in_time_recovery.schedule, database = id
        input    = { database = id }
      }
    },
    {
      for id, db in var.databases : "verify-deep-${id}" => {
        function = "verify", expression = var.schedules.verify_deep, database = id, runner = db.runner
        input    = { database = id, backup = "latest", level = "deep" }
      }
    },
    !var.restore_verification.enabled ? {} : {
      for id, db in var.databases : "verify-restore-${id}" => {
        function = "verify", expression = var.schedules.verify_restore, database = id, runner = db.runner
        input    = { database = id, backup = "latest", level = "restore" }
      }
    },
    {
      for id in keys(var.databases) : "monitor-${id}" => {
        function = "monitor", expression = var.schedules.monitor, database = id
        input    = { database = id }
      }
    },
    {
      for id in keys(var.databases) : "retention-${id}" => {
        function = "retention", expression = var.schedules.retention, database = id
        input    = { database = id }
      }
    },
  )
}

locals {
  # Which scheduled jobs (backups, verifications) start a container task instead of a function.
  on_task = { for key, job in local.jobs : key => lookup(job, "runner", "lambda") == "fargate" }
}

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-schedule-dead-letters"
  message_retention_seconds = 1209600
  kms_master_key_id         = local.kms_key_arn
  tags                      = var.tags
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name                 = "${var.name}-scheduler"
  path                 = var.iam_path
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.scheduler_assume.json
  tags                 = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = [for name, fn in aws_lambda_function.this : fn.arn if name != "notify-slack"]
  }
  # Databases whose backups and verifications run on the container tasks: the schedule starts
  # them directly.
  dynamic "statement" {
    for_each = length(local.fargate_databases) > 0 ? [1] : []
    content {
      actions   = ["ecs:RunTask"]
      resources = [for job in local.task_jobs : "${local.task_definition_arns[job]}:*"]
      condition {
        test     = "ArnEquals"
        variable = "ecs:cluster"
        values   = [aws_ecs_cluster.this[0].arn]
      }
    }
  }
  dynamic "statement" {
    for_each = length(local.fargate_databases) > 0 ? [1] : []
    content {
      actions   = ["iam:PassRole"]
      resources = concat([for role in aws_iam_role.task : role.arn], [aws_iam_role.task_execution[0].arn])
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["ecs-tasks.amazonaws.com"]
      }
    }
  }
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]
  }
  statement {
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule_group" "this" {
  name = var.name
  tags = var.tags
}

resource "aws_scheduler_schedule" "this" {
  for_each                     = local.jobs
  name                         = "${var.name}-${each.key}"
  group_name                   = aws_scheduler_schedule_group.this.name
  schedule_expression          = each.value.expression
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = local.kms_key_arn

  # A drain every few minutes keeps its pace: no flexible window for it.
  flexible_time_window {
    mode                      = each.value.function == "stream" ? "OFF" : "FLEXIBLE"
    maximum_window_in_minutes = each.value.function == "stream" ? null : var.schedule_window_minutes
  }

  target {
    arn      = local.on_task[each.key] ? aws_ecs_cluster.this[0].arn : aws_lambda_function.this[each.value.function].arn
    role_arn = aws_iam_role.scheduler.arn
    # The task gets the same job as the function would, as its BACKSTOP_JOB.
    input = local.on_task[each.key] ? jsonencode({
      containerOverrides = [{
        name        = local.task_container
        environment = [{ name = "BACKSTOP_JOB", value = jsonencode(each.value.input) }]
      }]
    }) : jsonencode(each.value.input)

    dynamic "ecs_parameters" {
      for_each = local.on_task[each.key] ? [1] : []
      content {
        task_definition_arn = aws_ecs_task_definition.this[each.value.function].arn_without_revision
        task_count          = 1
        propagate_tags      = "TASK_DEFINITION"
        capacity_provider_strategy {
          capacity_provider = local.task_capacity
          weight            = 1
        }
        network_configuration {
          subnets          = local.task_subnets
          security_groups  = local.task_security
          assign_public_ip = var.fargate.assign_public_ip
        }
      }
    }

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }

    dead_letter_config {
      arn = aws_sqs_queue.dead_letters.arn
    }
  }
}
