################################################################################
# Alerts: one topic, email subscribers, the Slack notifier
################################################################################

# The module's topic, unless alert_topic_arn brings one.
resource "aws_sns_topic" "this" {
  count             = var.alert_topic_arn == null ? 1 : 0
  name              = "${var.name}-alerts"
  kms_master_key_id = local.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alert_emails)
  topic_arn = local.alert_topic_arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "slack" {
  count     = var.slack.enabled ? 1 : 0
  topic_arn = local.alert_topic_arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this["notify-slack"].arn
}

resource "aws_lambda_permission" "slack" {
  count         = var.slack.enabled ? 1 : 0
  statement_id  = "AllowAlertTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["notify-slack"].function_name
  principal     = "sns.amazonaws.com"
  source_arn    = local.alert_topic_arn
}
