################################################################################
# Recovery objectives: each database's declared RPO, RTO and restore-test cadence (its own
# objectives, else var.objectives), with the intervals of the schedules they are judged
# against, for the monitor (BACKSTOP_OBJECTIVES), the dashboard and the objectives output
################################################################################

locals {
  # Seconds per unit, as the monitor reads a duration (s, m, h, d, w) and as a rate() says one.
  duration_units = { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }
  rate_units     = { minute = 60, minutes = 60, hour = 3600, hours = 3600, day = 86400, days = 86400 }

  # The schedules that make recovery points and test restores.
  objective_schedules = {
    backup_every          = var.schedules.backup
    stream_every          = var.point_in_time_recovery.schedule
    restore_test_schedule = var.schedules.verify_restore
  }
  # A rate(N unit) as written.
  rate_seconds = {
    for job, expression in local.objective_schedules :
    job => tonumber(regex("^rate\\(([0-9]+) ", expression)[0]) * local.rate_units[regex(" ([a-z]+)\\)$", expression)[0]]
    if startswith(expression, "rate(")
  }
  # A cron(minutes hours day-of-month month day-of-week year) read for its usual shapes: every
  # N minutes (*/N past each hour), every N hours (at a fixed minute, */N hours), daily (a fixed
  # minute and hour), weekly (one day of the week) or monthly (one day of the month); null for
  # any other (lists, ranges, given months), which counts as a day.
  cron_fields = {
    for job, expression in local.objective_schedules : job => zipmap(
      ["minute", "hour", "day", "month", "weekday", "year"],
      split(" ", regex("^cron\\((.*)\\)$", expression)[0]),
    ) if startswith(expression, "cron(")
  }
  cron_seconds = {
    for job, f in local.cron_fields : job => (
      f.month != "*" || f.year != "*" ? null
      : contains(["*", "?"], f.day) && contains(["*", "?"], f.weekday) ? (
        f.minute == "*" && f.hour == "*" ? 60
        : can(regex("^(\\*|0)/[1-9][0-9]*$", f.minute)) && f.hour == "*" ? 60 * tonumber(split("/", f.minute)[1])
        : can(regex("^[0-9]+$", f.minute)) && f.hour == "*" ? 3600
        : can(regex("^[0-9]+$", f.minute)) && can(regex("^(\\*|0)/[1-9][0-9]*$", f.hour)) ? 3600 * tonumber(split("/", f.hour)[1])
        : can(regex("^[0-9]+$", f.minute)) && can(regex("^[0-9]+$", f.hour)) ? 86400
        : null
      )
      : !can(regex("^[0-9]+$", f.minute)) || !can(regex("^[0-9]+$", f.hour)) ? null
      : f.day == "?" && can(regex("^(?i)([1-7]|[a-z]{3})(#[1-5])?$", f.weekday)) ? (can(regex("#", f.weekday)) ? 31 * 86400 : 7 * 86400)
      : can(regex("^([1-9]|[12][0-9]|3[01]|L)$", f.day)) && f.weekday == "?" ? 31 * 86400
      : null
    )
  }
  # Each schedule's interval in seconds, and whether it was assumed (a cron shape not read).
  schedule_seconds = {
    for job, expression in local.objective_schedules : job => try(coalesce(
      lookup(local.rate_seconds, job, null), lookup(local.cron_seconds, job, null)
    ), 86400)
  }
  schedule_assumed = {
    for job, expression in local.objective_schedules :
    job => lookup(local.rate_seconds, job, null) == null && lookup(local.cron_seconds, job, null) == null
  }

  # Per database: what is declared (the database's own, else the module-wide), as written.
  objectives_declared = {
    for id, db in var.databases : id => {
      for field in ["rpo", "rto", "restore_test_every"] :
      field => db.objectives[field] != null ? db.objectives[field] : var.objectives[field]
    }
  }
  # The intervals the monitor judges against (the stream's with point-in-time recovery, the
  # test restore's when it is scheduled), in seconds.
  objectives_intervals = {
    backup_every          = local.schedule_seconds.backup_every
    stream_every          = var.point_in_time_recovery.enabled ? local.schedule_seconds.stream_every : null
    restore_test_schedule = var.restore_verification.enabled ? local.schedule_seconds.restore_test_schedule : null
  }
  # Per database, in seconds: each objective in force, as the monitor resolves it (its
  # defaults tolerate one failed run: an RPO of two and a half recovery-point intervals, an RTO
  # of 4 h, a restore test every two and a half scheduled ones, none judged without a schedule).
  objectives_seconds = {
    for id, declared in local.objectives_declared : id => {
      for field, text in declared : field => (
        text != null ? try(sum([for part in regexall("([0-9]+) ?([smhdw])", text) : tonumber(part[0]) * local.duration_units[part[1]]]), 0)
        : field == "rpo" ? local.tolerating_one_failure[local.recovery_point_job]
        : field == "rto" ? 4 * 3600
        : local.tolerating_one_failure.restore_test_schedule
      )
    }
  }
  # The job whose runs make recovery points: the change stream's drain with point-in-time
  # recovery, else the backups.
  recovery_point_job = local.objectives_intervals.stream_every != null ? "stream_every" : "backup_every"
  # Per interval, in seconds: when the run that was due counts as not landed (the interval and
  # half of it more, a margin for the run's time and the scheduler's window; the monitor's
  # late_after), from which an objective is at risk; and a default objective, which tolerates
  # one failed run (two and a half intervals; its tolerating_one_failure).
  late_after = {
    for job, seconds in local.objectives_intervals : job => seconds == null ? null : seconds + seconds / 2
  }
  tolerating_one_failure = {
    for job, seconds in local.objectives_intervals : job => seconds == null ? null : 2 * seconds + seconds / 2
  }
  # A number of seconds as the monitor reads a duration: days, hours, minutes and seconds, each
  # left out when nought (15h, 12m 30s, 17d 12h).
  seconds_text = {
    for seconds in distinct(compact(flatten(concat(
      [for o in values(local.objectives_seconds) : values(o)],
      values(local.objectives_intervals),
      values(local.late_after),
      )))) : tostring(seconds) => join(" ", compact([
      seconds >= 86400 ? "${floor(seconds / 86400)}d" : "",
      seconds % 86400 >= 3600 ? "${floor(seconds % 86400 / 3600)}h" : "",
      seconds % 3600 >= 60 ? "${floor(seconds % 3600 / 60)}m" : "",
      seconds % 60 > 0 ? "${seconds % 60}s" : "",
    ]))
  }
  intervals_text = {
    for field, seconds in local.objectives_intervals :
    field => seconds == null ? null : local.seconds_text[tostring(seconds)]
  }

  # The objectives in force, per database: as declared, else the default spelled as a duration,
  # with the intervals; what the objectives output shows and the dashboard draws.
  objectives = {
    for id, seconds in local.objectives_seconds : id => merge(local.intervals_text, {
      for field, value in seconds : field => (
        local.objectives_declared[id][field] != null ? local.objectives_declared[id][field]
        : value == null ? null : local.seconds_text[tostring(value)]
      )
      }, {
      for field, value in seconds : "${field}_seconds" => value
    })
  }

  # What the checks below name: databases whose objective leaves no margin for one run late:
  # shorter than the interval and a half after which the monitor counts the due run as not
  # landed, so it is missed whenever a run takes its margin, before it could be at risk.
  rpo_below_interval = [
    for id, o in local.objectives_seconds : "${id} (${local.objectives[id].rpo})"
    if o.rpo < local.late_after[local.recovery_point_job]
  ]
  restore_tests_too_rare = [
    for id, o in local.objectives_seconds : "${id} (${local.objectives[id].restore_test_every})"
    if o.restore_test_every == null || local.late_after.restore_test_schedule == null ? false : o.restore_test_every < local.late_after.restore_test_schedule
  ]
  # Schedules read as a day whose interval sets a default objective of some database.
  defaults_from_a_guess = [
    for input, guess in {
      "schedules.backup"                = !local.pitr && local.schedule_assumed.backup_every && anytrue([for d in values(local.objectives_declared) : d.rpo == null])
      "point_in_time_recovery.schedule" = local.pitr && local.schedule_assumed.stream_every && anytrue([for d in values(local.objectives_declared) : d.rpo == null])
      "schedules.verify_restore"        = var.restore_verification.enabled && local.schedule_assumed.restore_test_schedule && anytrue([for d in values(local.objectives_declared) : d.restore_test_every == null])
    } : input if guess
  ]

  # BACKSTOP_OBJECTIVES: per database, what was declared and the schedules' intervals; the
  # monitor fills in the rest with the same defaults.
  objectives_json = jsonencode({
    for id, declared in local.objectives_declared : id => {
      for field, text in merge(declared, local.intervals_text) : field => text if text != null
    }
  })
}

# Objectives the schedules cannot meet with a run's margin, and defaults taken from a schedule the module
# could not read: warnings at plan, as the monitor would report them.
check "objectives_fit_the_schedules" {
  assert {
    condition     = length(local.rpo_below_interval) == 0
    error_message = "The RPO of ${join(", ", local.rpo_below_interval)} is shorter than one and a half intervals between recovery points (${try(local.seconds_text[tostring(local.late_after[local.recovery_point_job])], "-")}: one every ${local.intervals_text[local.recovery_point_job]}, and half of that for a run's own time and the scheduler's window): the schedule cannot meet it, since with a run's margin the newest recovery point can be older than the objective even when no run fails. Back up more often (schedules.backup), run a change stream (point_in_time_recovery), or declare a longer rpo."
  }
  assert {
    condition     = length(local.restore_tests_too_rare) == 0
    error_message = "The restore_test_every of ${join(", ", local.restore_tests_too_rare)} is shorter than one and a half intervals of the scheduled test restore (${try(local.seconds_text[tostring(local.late_after.restore_test_schedule)], "-")}: schedules.verify_restore every ${coalesce(local.intervals_text.restore_test_schedule, "-")}, and half of that for a run's own time and the scheduler's window): the schedule cannot meet it, since with a run's margin the newest test can be older than the cadence even when no run fails. Test restores more often, or declare a longer restore_test_every."
  }
  assert {
    condition     = length(local.defaults_from_a_guess) == 0
    error_message = "A cron() schedule that is not every N minutes, every N hours, daily, weekly or monthly counts as once a day, and a default objective is taken from it (${join(", ", local.defaults_from_a_guess)}). Declare the objective (objectives.rpo, objectives.restore_test_every) so none depends on that guess."
  }
}
