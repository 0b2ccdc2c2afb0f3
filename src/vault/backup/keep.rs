//! Which snapshots a retention rule keeps (issue 19.2): plan, then apply
//! (the plan is a pure function of the snapshots' times, the rule and
//! now, so tests check it with a fixed clock).

/// One part of a rule: keep the newest snapshot of each of the last
/// `count` periods of `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub count: u32,
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// The last `count` snapshots, whatever their times.
    Last,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// Parses `7d,4w,12m` (h, d, w, m, y; `n` for the last N snapshots).
pub fn parse(s: &str) -> Result<Vec<Keep>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (n, u) = part.split_at(part.len() - 1);
        let count: u32 = n.parse().ok().filter(|c| *c > 0).ok_or_else(|| {
            format!("{part}: a count (1 or more) comes before the unit, as in 7d")
        })?;
        let unit = match u {
            "n" => Unit::Last,
            "h" => Unit::Hour,
            "d" => Unit::Day,
            "w" => Unit::Week,
            "m" => Unit::Month,
            "y" => Unit::Year,
            _ => {
                return Err(format!(
                    "{part}: the unit is one of n (last snapshots), h, d, w, m, y"
                ));
            }
        };
        out.push(Keep { count, unit });
    }
    if out.is_empty() {
        return Err("an empty rule would keep nothing; give one such as 7d,4w,12m".into());
    }
    Ok(out)
}

/// Days since 1970-01-01 to (year, month).
fn year_month(days: i64) -> (i64, i64) {
    let (y, m, _) = crate::vault::util::civil_from_days(days);
    (i64::from(y), i64::from(m))
}

fn period(t: u64, unit: Unit, index: usize) -> i64 {
    let t = t as i64;
    let days = t.div_euclid(86_400);
    match unit {
        Unit::Last => index as i64,
        Unit::Hour => t.div_euclid(3600),
        Unit::Day => days,
        // Weeks from Monday (1970-01-01 was a Thursday).
        Unit::Week => (days + 3).div_euclid(7),
        Unit::Month => {
            let (y, m) = year_month(days);
            y * 12 + m
        }
        Unit::Year => year_month(days).0,
    }
}

/// The snapshots (ID, time in seconds, oldest first) a rule removes. The newest is
/// always kept; each part keeps the newest snapshot of each of its last
/// `count` periods that have one.
pub fn plan(snapshots: &[(String, u64)], rule: &[Keep]) -> Vec<String> {
    let mut by_time: Vec<(usize, &(String, u64))> = snapshots.iter().enumerate().collect();
    // Newest first; in one second, the later ID (its position in the
    // list, which is in order) first.
    by_time.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(b.0.cmp(&a.0)));
    let mut keep = vec![false; snapshots.len()];
    if let Some((i, _)) = by_time.first() {
        keep[*i] = true;
    }
    for k in rule {
        let mut last = None;
        let mut taken = 0;
        for (n, (i, (_, t))) in by_time.iter().enumerate() {
            if taken >= k.count {
                break;
            }
            let p = period(*t, k.unit, n);
            if last != Some(p) {
                last = Some(p);
                keep[*i] = true;
                taken += 1;
            }
        }
    }
    snapshots
        .iter()
        .zip(keep)
        .filter(|(_, k)| !k)
        .map(|((id, _), _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse("7d,4w,12m").unwrap(),
            vec![
                Keep {
                    count: 7,
                    unit: Unit::Day
                },
                Keep {
                    count: 4,
                    unit: Unit::Week
                },
                Keep {
                    count: 12,
                    unit: Unit::Month
                },
            ]
        );
        assert!(parse("0d").unwrap_err().contains("count"));
        assert!(parse("7x").unwrap_err().contains("unit"));
        assert!(parse("").is_err());
        assert!(parse("d").is_err());
    }

    #[test]
    fn calendar() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(20_454), (2026, 1)); // 2026-01-01
        assert_eq!(year_month(20_454 + 31 + 27), (2026, 2)); // 2026-02-28
        assert_eq!(year_month(20_454 + 31 + 28), (2026, 3)); // 2026-03-01
        assert_eq!(year_month(-1), (1969, 12));
    }

    /// Snapshots every 6 hours for 90 days; 7d,4w,3m keeps the newest of
    /// each of the last 7 days, 4 weeks and 3 months (some overlap).
    #[test]
    fn daily_weekly_monthly() {
        let start = 20_454 * 86_400u64; // 2026-01-01 00:00 UTC, a Thursday
        let snaps: Vec<(String, u64)> = (0..90 * 4)
            .map(|i| (format!("s{i:04}"), start + i * 6 * 3600))
            .collect();
        let gone = plan(&snaps, &parse("7d,4w,3m").unwrap());
        let kept: Vec<&str> = snaps
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| !gone.iter().any(|g| g == id))
            .collect();
        // Newest: day 89, 18:00 (2026-03-31). Days 83..=89 (7); weeks from
        // Monday: those of days 89 and 87 are kept already, then Sundays
        // 03-22 (day 80) and 03-15 (day 73); months: March (day 89),
        // February and January (their last days, 58 and 30).
        let day = |d: u64| format!("s{:04}", d * 4 + 3);
        let mut want: Vec<String> = (83..=89).map(day).collect();
        want.extend([day(80), day(73), day(58), day(30)]);
        want.sort();
        assert_eq!(kept, want.iter().map(String::as_str).collect::<Vec<_>>());
        // Only the last two snapshots.
        assert_eq!(plan(&snaps, &parse("2n").unwrap()).len(), snaps.len() - 2);
        // Nothing to plan on nothing.
        assert!(plan(&[], &parse("1d").unwrap()).is_empty());
    }
}
