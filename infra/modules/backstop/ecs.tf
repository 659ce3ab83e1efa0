################################################################################
# The container task: the same backup binary on ECS Fargate, for backups that do not fit in
# one Lambda invocation. Exists when var.fargate.enabled.
################################################################################

locals {
  fargate            = var.fargate.enabled
  task_family        = "${var.name}-backup"
  task_container     = "backstop"
  task_subnets       = var.fargate.subnet_ids != null ? var.fargate.subnet_ids : var.vpc_subnet_ids
  task_security      = var.fargate.security_group_ids != null ? var.fargate.security_group_ids : var.vpc_security_group_ids
  task_capacity      = var.fargate.spot ? "FARGATE_SPOT" : "FARGATE"
  fargate_databases  = toset([for id, db in var.databases : id if db.runner == "fargate"])
  task_definition    = local.fargate ? "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${local.task_family}" : null
  task_log_group_arn = local.fargate ? aws_cloudwatch_log_group.task[0].arn : null
  # What the backup function needs to start the task.
  dispatch_environment = local.fargate ? {
    BACKSTOP_TASK_DEFINITION      = aws_ecs_task_definition.backup[0].family
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
    kms_key         = aws_kms_key.this.arn
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
  count             = local.fargate ? 1 : 0
  name              = "/ecs/${local.task_family}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
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

# What the task itself may do: exactly what the backup function may (the store, its
# databases' secrets, alerts, metrics), and nothing to do with ECS.
resource "aws_iam_role" "task" {
  count              = local.fargate ? 1 : 0
  name               = "${var.name}-backup-task"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "task" {
  count  = local.fargate ? 1 : 0
  name   = "${var.name}-backup-task"
  role   = aws_iam_role.task[0].id
  policy = data.aws_iam_policy_document.function["backup"].json
}

# What ECS needs to start it: pull the image, write its log.
resource "aws_iam_role" "task_execution" {
  count              = local.fargate ? 1 : 0
  name               = "${var.name}-backup-task-execution"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
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
    resources = [aws_kms_key.this.arn]
  }
  statement {
    sid       = "TaskLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.task[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "task_execution" {
  count  = local.fargate ? 1 : 0
  name   = "${var.name}-backup-task-execution"
  role   = aws_iam_role.task_execution[0].id
  policy = data.aws_iam_policy_document.task_execution[0].json
}

# The task reads its databases' connections from Secrets Manager or SSM at run time with its
# role, as the function does: no secret value is ever in the task definition or its
# environment. Parts stream to S3, so the default ephemeral storage is never filled.
resource "aws_ecs_task_definition" "backup" {
  count                    = local.fargate ? 1 : 0
  family                   = local.task_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.fargate.cpu
  memory                   = var.fargate.memory
  execution_role_arn       = aws_iam_role.task_execution[0].arn
  task_role_arn            = aws_iam_role.task[0].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  container_definitions = jsonencode([
    {
      name                   = local.task_container
      image                  = "${aws_ecr_repository.this[0].repository_url}:${var.fargate.image_tag}"
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65534:65534"
      environment = [
        for name, value in merge(local.environment["backup"], {
          # Re-run commands in its alerts name the function that dispatches to it.
          BACKSTOP_FUNCTION_NAME = "${var.name}-backup"
          # Two parallel COPY streams per vCPU.
          BACKSTOP_BACKUP_JOBS = tostring(max(2, floor(var.fargate.cpu / 512)))
        }) : { name = name, value = value }
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.task[0].name
          awslogs-region        = local.region
          awslogs-stream-prefix = "backup"
        }
      }
    }
  ])

  tags = var.tags
}

# The backup function may start that one task definition in that one cluster, and hand ECS
# the two roles it runs with; nothing else.
data "aws_iam_policy_document" "dispatch" {
  count = local.fargate ? 1 : 0
  statement {
    sid       = "StartBackupTask"
    actions   = ["ecs:RunTask"]
    resources = ["${local.task_definition}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this[0].arn]
    }
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task[0].arn, aws_iam_role.task_execution[0].arn]
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
