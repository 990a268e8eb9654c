//! Scheduled minimum capacity: for each hour of the day, the minimum of the
//! two autoscaled pools (the service's tasks, the intent endpoint's
//! SageMaker instances), from the hourly profile ([`crate::bill::hourly_load`])
//! in the profile's time zone (`targets.traffic.timezone`).
//!
//! Hour `h`'s minimum is `max(floor, ⌈peak × share_h⌉)`: the floor is the
//! plan's autoscaling minimum (placement and failure floors), the peak is
//! the sized count. It is a floor under target tracking, which still scales
//! out within the hour; it keeps the expected load's capacity in place when
//! metrics lag (a morning ramp, a dip in sessions). Neighbours:
//! - the bill (`bill.rs`) prices exactly these hours;
//! - the service and intent stacks render them as Application Auto Scaling
//!   scheduled actions (`ScheduledAction::hourly` in
//!   `stacks/src/model/resources/autoscaling.rs`);
//! - drift and status (`src/deploy/live.rs`) ask [`CapacitySchedule::due`]
//!   which minimum stands now; an on-call scale record suspends the
//!   schedule (`src/deploy/holds.rs`, `src/deploy/scale.rs`).

use serde::Serialize;

/// The time zone when the environment file names none.
pub const UTC: &str = "UTC";

/// Whether `name` is a time zone the scheduled actions can use: an IANA
/// name ("The supported time zone values are the canonical names of the IANA
/// time zones supported by Joda-Time (such as Etc/GMT+9 or Pacific/Tahiti)":
/// Application Auto Scaling User Guide, "Schedule recurring scaling actions
/// using Application Auto Scaling"). Checked against the tz database bundled
/// at build time, so every machine agrees.
pub fn check_timezone(name: &str) -> Result<(), String> {
    match jiff::tz::db().get(name) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{name:?} is not an IANA time zone name (for example Asia/Tokyo, America/New_York, UTC)"
        )),
    }
}

/// The local hour and minute in `timezone` at `unix_seconds`.
pub fn local_time(timezone: &str, unix_seconds: i64) -> Option<(u32, u32)> {
    let tz = jiff::tz::db().get(timezone).ok()?;
    let at = jiff::Timestamp::from_second(unix_seconds).ok()?;
    let local = at.to_zoned_datetime(tz);
    Some((
        u32::try_from(local.hour()).ok()?,
        u32::try_from(local.minute()).ok()?,
    ))
}

/// `max(floor, ⌈peak × share⌉)` for each hour's share of the peak.
pub fn hourly_minimum(floor: u32, peak: u32, load: &[f64]) -> Vec<u32> {
    load.iter()
        .map(|share| floor.max((f64::from(peak) * share).ceil() as u32))
        .collect()
}

/// One pool's minimum per hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolSchedule {
    /// The plan's autoscaling minimum (the scalable target's MinCapacity).
    pub floor: u32,
    /// The minimum of each local hour, 24 values.
    pub hourly_min: Vec<u32>,
}

impl PoolSchedule {
    /// Whether the schedule ever differs from the floor, so that scheduled
    /// actions are worth rendering.
    pub fn is_scheduled(&self) -> bool {
        self.hourly_min.iter().any(|&m| m != self.floor)
    }

    /// For people: `5, 6 from 18:00 to 22:59`, or `2 all day (no schedule)`.
    pub fn describe(&self) -> String {
        if !self.is_scheduled() {
            return format!("{} all day (no schedule)", self.floor);
        }
        let mut runs: Vec<String> = Vec::new();
        let mut h = 0;
        while h < self.hourly_min.len() {
            let m = self.hourly_min[h];
            let start = h;
            while h < self.hourly_min.len() && self.hourly_min[h] == m {
                h += 1;
            }
            if m != self.floor {
                runs.push(format!("{m} from {start:02}:00 to {:02}:59", h - 1));
            }
        }
        format!("{}, {}", self.floor, runs.join(", "))
    }
}

/// Which minimum stands at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    /// Local hour of the day.
    pub hour: u32,
    /// That hour's minimum.
    pub min: u32,
    /// The previous hour's minimum, while its successor may not have run
    /// yet ([`GRACE_MINUTES`] after the hour).
    pub previous: Option<u32>,
}

/// Minutes after the hour during which the previous hour's minimum still
/// counts as scheduled: a scheduled action runs at its time, but the scaling
/// activity it starts takes effect afterwards (Application Auto Scaling User
/// Guide, "How scheduled scaling works": "At the specified time, Application
/// Auto Scaling scales based on the new capacity values").
pub const GRACE_MINUTES: u32 = 5;

/// The scheduled minimum capacity of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacitySchedule {
    /// IANA time zone of the hours.
    pub timezone: String,
    pub service: PoolSchedule,
    pub sagemaker: PoolSchedule,
}

impl CapacitySchedule {
    /// The minimum `pool` should have at `unix_seconds`, or `None` when the
    /// pool is not scheduled.
    pub fn due(&self, pool: &PoolSchedule, unix_seconds: i64) -> Option<Due> {
        if !pool.is_scheduled() {
            return None;
        }
        let (hour, minute) = local_time(&self.timezone, unix_seconds)?;
        let n = pool.hourly_min.len();
        let at = |h: usize| pool.hourly_min.get(h % n.max(1)).copied();
        let min = at(hour as usize)?;
        let previous = (minute < GRACE_MINUTES)
            .then(|| at(hour as usize + n - 1))
            .flatten()
            .filter(|&p| p != min);
        Some(Due {
            hour,
            min,
            previous,
        })
    }
}

/// The schedule for a sized plan's pools over the hourly `load`.
pub fn plan(
    timezone: Option<&str>,
    load: &[f64],
    service: (u32, u32),
    sagemaker: (u32, u32),
) -> CapacitySchedule {
    let pool = |(floor, peak): (u32, u32)| PoolSchedule {
        floor,
        hourly_min: hourly_minimum(floor, peak, load),
    };
    CapacitySchedule {
        timezone: timezone.unwrap_or(UTC).to_owned(),
        service: pool(service),
        sagemaker: pool(sagemaker),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_is_the_peak_share_rounded_up_over_the_floor() {
        // 6 tasks at peak, floor 2: 0.25 × 6 = 1.5 → 2 (floor), 0.5 × 6 = 3,
        // 0.6 × 6 = 3.6 → 4, 1.0 × 6 = 6.
        assert_eq!(
            hourly_minimum(2, 6, &[0.25, 0.5, 0.6, 1.0]),
            vec![2, 3, 4, 6]
        );
    }

    #[test]
    fn the_description_names_the_hours_off_the_floor() {
        let mut hourly_min = vec![5; 24];
        for m in &mut hourly_min[18..=22] {
            *m = 6;
        }
        hourly_min[8] = 7;
        let p = PoolSchedule {
            floor: 5,
            hourly_min,
        };
        assert_eq!(
            p.describe(),
            "5, 7 from 08:00 to 08:59, 6 from 18:00 to 22:59"
        );
        let flat = PoolSchedule {
            floor: 2,
            hourly_min: vec![2; 24],
        };
        assert_eq!(flat.describe(), "2 all day (no schedule)");
    }

    #[test]
    fn a_flat_schedule_at_the_floor_is_not_scheduled() {
        let p = PoolSchedule {
            floor: 2,
            hourly_min: vec![2; 24],
        };
        assert!(!p.is_scheduled());
        let q = PoolSchedule {
            floor: 2,
            hourly_min: vec![3; 24],
        };
        assert!(q.is_scheduled());
    }

    #[test]
    fn local_hours_follow_the_zone_and_its_daylight_saving() {
        // 2026-12-01T00:00:00Z = 1_796_083_200.
        let t = 1_796_083_200;
        assert_eq!(local_time("UTC", t), Some((0, 0)));
        assert_eq!(local_time("Asia/Tokyo", t), Some((9, 0)));
        // New York is on EST (UTC−5) in December, EDT (UTC−4) in July:
        // 2026-07-01T00:00:00Z = 1_782_864_000.
        assert_eq!(local_time("America/New_York", t), Some((19, 0)));
        assert_eq!(local_time("America/New_York", 1_782_864_000), Some((20, 0)));
        assert!(check_timezone("Asia/Tokyo").is_ok());
        assert!(check_timezone("Mars/Olympus").is_err());
    }

    #[test]
    fn the_previous_hour_counts_for_the_first_minutes_only() {
        let mut hourly_min = vec![2; 24];
        hourly_min[9] = 5;
        let s = CapacitySchedule {
            timezone: "Asia/Tokyo".into(),
            service: PoolSchedule {
                floor: 2,
                hourly_min,
            },
            sagemaker: PoolSchedule {
                floor: 1,
                hourly_min: vec![1; 24],
            },
        };
        let nine = 1_796_083_200; // 09:00 in Tokyo
        let due = s.due(&s.service, nine + 60).expect("scheduled");
        assert_eq!((due.hour, due.min, due.previous), (9, 5, Some(2)));
        let due = s.due(&s.service, nine + 10 * 60).expect("scheduled");
        assert_eq!((due.min, due.previous), (5, None));
        let due = s.due(&s.service, nine + 3600 + 60).expect("scheduled");
        assert_eq!((due.hour, due.min, due.previous), (10, 2, Some(5)));
        assert_eq!(s.due(&s.sagemaker, nine), None);
    }
}
