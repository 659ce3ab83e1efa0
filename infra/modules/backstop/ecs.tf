################################################################################
# The container tasks: the same backup and verify binaries on ECS Fargate, for backups (and
# test restores of them) that do not fit in one Lambda invocation. Exist when
# var.fargate.enabled.
################################################################################

locals {
  fargate           = var.fargate.enabled
  task_jobs         = local.fargate ? toset(["backup", "verify"]) : toset([])
  task_container    = "backstop"
  task_subnets      = var.fargate.subnet_ids != null ? var.fargate.subnet_ids : var.vpc_subnet_ids
  task_security     = var.fargate.security_group_ids != null ? var.fargate.security_group_ids : var.vpc_security_group_ids
  task_capacity     = var.fargate.spot ? "FARGATE_SPOT" : "FARGATE"
  fargate_databases = toset([for id, db in var.databases : id if db.runner == "fargate"])
  task_definition_arns = {
    for job in local.task_jobs : job => "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${var.name}-${job}"
  }
  # Parallel connections of each job: two per vCPU.
  task_jobs_variable = { backup = "BACKSTOP_BACKUP_JOBS", verify = "BACKSTOP_VERIFY_JOBS" }
  # What the backup function needs to start the task.
  dispatch_environment = local.fargate ? {
    BACKSTOP_TASK_DEFINITION      = aws_ecs_task_definition.this["backup"].family
    BACKSTOP_TASK_CLUSTER         = aws_ecs_cluster.this[0].arn
    BACKSTOP_TASK_CONTAINER       = local.task_container
    BACKSTOP_TASK_SUBNETS         = join(",", local.task_subnets)
    BACKSTOP_TASK_SECURITY_GROUPS = join(",", local.task_security)
    BACKSTOP_TASK_SPOT            = tostring(var.fargate.spot)
    BACKSTOP_TASK_PUBLIC_IP       = tostring(var.fargate.assign_public_ip)
    BACKSTOP_TASK_START_SECONDS   = tostring(var.fargate.start_seconds)
  } : {}
}

resource "aws_ecr_repository" "this" {
  count                = local.fargate ? 1 : 0
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = local.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  count      = local.fargate ? 1 : 0
  repository = aws_ecr_repository.this[0].name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged layers of replaced pushes go after a week"
        selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 7 }
        action       = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the ten newest releases"
        selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 10 }
        action       = { type = "expire" }
      },
    ]
  })
}

resource "aws_ecs_cluster" "this" {
  count = local.fargate ? 1 : 0
  name  = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  count              = local.fargate ? 1 : 0
  cluster_name       = aws_ecs_cluster.this[0].name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = local.task_capacity
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "task" {
  for_each          = local.task_jobs
  name              = "/ecs/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# What each task itself may do: exactly what its function may (backup: the store, its
# databases' secrets, alerts, metrics; verify: reading backups, writing results, the scratch
# server and the identity), and nothing to do with ECS.
resource "aws_iam_role" "task" {
  for_each             = local.task_jobs
  name                 = "${var.name}-${each.key}-task"
  path                 = var.iam_path
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.tasks_assume.json
  tags                 = var.tags
}

resource "aws_iam_role_policy" "task" {
  for_each = local.task_jobs
  name     = "${var.name}-${each.key}-task"
  role     = aws_iam_role.task[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

# What ECS needs to start them: pull the image, write their logs.
resource "aws_iam_role" "task_execution" {
  count                = local.fargate ? 1 : 0
  name                 = "${var.name}-task-execution"
  path                 = var.iam_path
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.tasks_assume.json
  tags                 = var.tags
}

data "aws_iam_policy_document" "task_execution" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken takes no resource
  #checkov:skip=CKV_AWS_111:ecr:GetAuthorizationToken takes no resource; every other statement is scoped
  count = local.fargate ? 1 : 0
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.this[0].arn]
  }
  statement {
    sid       = "ImageKey"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
  }
  statement {
    sid       = "TaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.task : "${group.arn}:*"]
  }
}

resource "aws_iam_role_policy" "task_execution" {
  count  = local.fargate ? 1 : 0
  name   = "${var.name}-task-execution"
  role   = aws_iam_role.task_execution[0].id
  policy = data.aws_iam_policy_document.task_execution[0].json
}

# Each task reads its connections from Secrets Manager or SSM at run time with its role, as
# its function does: no secret value is ever in a task definition or its environment. Parts
# stream to and from S3, so the default ephemeral storage is never filled. One image: the
# entrypoint picks the binary.
resource "aws_ecs_task_definition" "this" {
  for_each                 = local.task_jobs
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.fargate.cpu
  memory                   = var.fargate.memory
  execution_role_arn       = aws_iam_role.task_execution[0].arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  container_definitions = jsonencode([
    {
      name                   = local.task_container
      image                  = "${aws_ecr_repository.this[0].repository_url}:${var.fargate.image_tag}"
      entryPoint             = ["/${each.key}"]
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65534:65534"
      environment = [
        for name, value in merge(local.environment[each.key], {
          # Re-run commands in its alerts name the function it stands in for.
          BACKSTOP_FUNCTION_NAME               = "${var.name}-${each.key}"
          (local.task_jobs_variable[each.key]) = tostring(max(2, floor(var.fargate.cpu / 512)))
        }) : { name = name, value = value }
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.task[each.key].name
          awslogs-region        = local.region
          awslogs-stream-prefix = each.key
        }
      }
    }
  ])

  tags = var.tags
}

# The backup function may start the backup task definition in that one cluster, and hand ECS
# the two roles it runs with; nothing else.
data "aws_iam_policy_document" "dispatch" {
  count = local.fargate ? 1 : 0
  statement {
    sid       = "StartBackupTask"
    actions   = ["ecs:RunTask"]
    resources = ["${local.task_definition_arns["backup"]}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this[0].arn]
    }
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task["backup"].arn, aws_iam_role.task_execution[0].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dispatch" {
  count  = local.fargate ? 1 : 0
  name   = "${var.name}-backup-dispatch"
  role   = aws_iam_role.this["backup"].id
  policy = data.aws_iam_policy_document.dispatch[0].json
}
