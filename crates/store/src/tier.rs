//! Tier of a new backup: `monthly` for the first successful backup of a calendar month (UTC),
//! else `weekly` for the first of an ISO week, else `daily`. Lifecycle rules match the tier tag.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The object tag every object of a set carries.
pub const TIER_TAG: &str = "backstop-tier";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Daily,
    Weekly,
    Monthly,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" => Ok(Tier::Daily),
            "weekly" => Ok(Tier::Weekly),
            "monthly" => Ok(Tier::Monthly),
            other => Err(format!(
                "`{other}` is not a tier; use daily, weekly or monthly"
            )),
        }
    }
}

/// The tier of a backup starting at `started`, given the start times of earlier successful
/// backups of the same database.
pub fn tier_for(started: OffsetDateTime, earlier: &[OffsetDateTime]) -> Tier {
    let started = started.to_offset(time::UtcOffset::UTC);
    let earlier: Vec<OffsetDateTime> = earlier
        .iter()
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .filter(|t| *t < started)
        .collect();
    let same_month =
        |t: &OffsetDateTime| t.year() == started.year() && t.month() == started.month();
    let same_week = |t: &OffsetDateTime| {
        t.to_iso_week_date().0 == started.to_iso_week_date().0 && t.iso_week() == started.iso_week()
    };
    if !earlier.iter().any(same_month) {
        Tier::Monthly
    } else if !earlier.iter().any(same_week) {
        Tier::Weekly
    } else {
        Tier::Daily
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn first_of_month_then_first_of_iso_week_then_daily() {
        let none: [OffsetDateTime; 0] = [];
        assert_eq!(
            tier_for(datetime!(2026-11-22 06:00 UTC), &none),
            Tier::Monthly
        );
        let earlier = [datetime!(2026-11-02 00:00 UTC)];
        // 2026-11-22 is a Sunday in ISO week 47; Nov 2 is in week 45.
        assert_eq!(
            tier_for(datetime!(2026-11-22 06:00 UTC), &earlier),
            Tier::Weekly
        );
        let earlier = [
            datetime!(2026-11-02 00:00 UTC),
            datetime!(2026-11-16 00:30 UTC),
        ];
        assert_eq!(
            tier_for(datetime!(2026-11-22 06:00 UTC), &earlier),
            Tier::Daily
        );
        // The ISO week of Dec 29, 2025 is week 1 of 2026: a new month, but the same week.
        let earlier = [datetime!(2025-12-29 00:00 UTC)];
        assert_eq!(
            tier_for(datetime!(2026-01-01 00:00 UTC), &earlier),
            Tier::Monthly
        );
        let earlier = [
            datetime!(2025-12-29 00:00 UTC),
            datetime!(2026-01-01 00:00 UTC),
        ];
        assert_eq!(
            tier_for(datetime!(2026-01-02 00:00 UTC), &earlier),
            Tier::Daily
        );
    }

    #[test]
    fn later_backups_do_not_count() {
        let later = [datetime!(2026-11-30 00:00 UTC)];
        assert_eq!(
            tier_for(datetime!(2026-11-22 06:00 UTC), &later),
            Tier::Monthly
        );
    }
}
