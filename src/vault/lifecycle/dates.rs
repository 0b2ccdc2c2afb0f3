//! Expiry and retention dates as users write them (docs/FORMAT.md §15):
//! a calendar day (`2027-03-01`, which starts at local midnight), a moment
//! (`2027-03-01T14:00`, local, or with `Z` / `+01:00`), or a span from today
//! (`+90d`, `+12w`, `+6m`, `+7y`). Each has one canonical text, which is
//! what is stored and shown.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A parsed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Date {
    /// A calendar day; it starts at local midnight.
    Day {
        /// Year (1970–9999).
        y: i32,
        /// Month 1–12.
        m: u32,
        /// Day of month.
        d: u32,
    },
    /// A moment, seconds since the epoch.
    At(i64),
}

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateError(pub String);

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (use a day like 2027-03-01, a time like 2027-03-01T14:00, or a span from today like +90d, +12w, +6m, +7y)",
            self.0
        )
    }
}

impl std::error::Error for DateError {}

fn bad(s: &str) -> DateError {
    DateError(format!("`{s}` is not a date"))
}

fn leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_days(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if leap(y) => 29,
        _ => 28,
    }
}

use crate::vault::util::civil_from_days;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y } as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn from_secs(s: i64) -> SystemTime {
    if s >= 0 {
        UNIX_EPOCH + Duration::from_secs(s as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
    }
}

/// Local civil time → seconds since the epoch (the C library's `mktime`).
fn local_secs(y: i32, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> i64 {
    // SAFETY: a zeroed tm is valid; mktime only reads and normalizes it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = y - 1900;
    tm.tm_mon = m as i32 - 1;
    tm.tm_mday = d as i32;
    tm.tm_hour = hh as i32;
    tm.tm_min = mm as i32;
    tm.tm_sec = ss as i32;
    tm.tm_isdst = -1;
    // SAFETY: see above.
    unsafe { libc::mktime(&mut tm) as i64 }
}

/// Today's local date.
fn local_day(now: SystemTime) -> (i32, u32, u32) {
    let tm = crate::vault::util::local_tm(secs(now) as libc::time_t);
    (tm.tm_year + 1900, tm.tm_mon as u32 + 1, tm.tm_mday as u32)
}

fn num(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn parse_day(s: &str) -> Option<(i32, u32, u32)> {
    let mut it = s.split('-');
    let y = num(it.next()?, 4)? as i32;
    let m = num(it.next()?, 2)?;
    let d = num(it.next()?, 2)?;
    if it.next().is_some() || !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    (d >= 1 && d <= month_days(y, m)).then_some((y, m, d))
}

fn add_months(y: i32, m: u32, d: u32, n: i64) -> Option<(i32, u32, u32)> {
    let total = y as i64 * 12 + (m as i64 - 1) + n;
    let ny = i32::try_from(total.div_euclid(12)).ok()?;
    let nm = (total.rem_euclid(12) + 1) as u32;
    Some((ny, nm, d.min(month_days(ny, nm))))
}

impl Date {
    /// Parses what a user typed; spans count from `now`'s local date.
    pub fn parse(text: &str, now: SystemTime) -> Result<Date, DateError> {
        let s = text.trim();
        if let Some(span) = s.strip_prefix('+') {
            let unit = span.chars().last().ok_or_else(|| bad(s))?;
            let n: i64 = span[..span.len() - unit.len_utf8()]
                .parse()
                .ok()
                .filter(|n| (0..=100_000).contains(n))
                .ok_or_else(|| bad(s))?;
            let (y, m, d) = local_day(now);
            let (y, m, d) = match unit {
                'd' => civil_from_days(days_from_civil(y, m, d) + n),
                'w' => civil_from_days(days_from_civil(y, m, d) + 7 * n),
                'm' => add_months(y, m, d, n).ok_or_else(|| bad(s))?,
                'y' => add_months(y, m, d, 12 * n).ok_or_else(|| bad(s))?,
                _ => return Err(bad(s)),
            };
            if y > 9999 {
                return Err(DateError(format!("`{s}` is too far ahead")));
            }
            return Ok(Date::Day { y, m, d });
        }
        if let Some((y, m, d)) = parse_day(s) {
            return Ok(Date::Day { y, m, d });
        }
        let (day, time) = s.split_once(['T', ' ']).ok_or_else(|| bad(s))?;
        let (y, m, d) = parse_day(day).ok_or_else(|| bad(s))?;
        // Offset: Z, +HH:MM, -HH:MM, or none (local time).
        let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
            (c, Some(0i64))
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (c, o) = time.split_at(i);
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':').ok_or_else(|| bad(s))?;
            let (oh, om) = (
                num(oh, 2).ok_or_else(|| bad(s))?,
                num(om, 2).ok_or_else(|| bad(s))?,
            );
            if oh > 23 || om > 59 {
                return Err(bad(s));
            }
            (c, Some(sign * (oh as i64 * 3600 + om as i64 * 60)))
        } else {
            (time, None)
        };
        let mut parts = clock.split(':');
        let hh = parts.next().and_then(|p| num(p, 2)).ok_or_else(|| bad(s))?;
        let mm = parts.next().and_then(|p| num(p, 2)).ok_or_else(|| bad(s))?;
        let ss = match parts.next() {
            Some(p) => num(p, 2).ok_or_else(|| bad(s))?,
            None => 0,
        };
        if parts.next().is_some() || hh > 23 || mm > 59 || ss > 59 {
            return Err(bad(s));
        }
        let at = match offset {
            Some(off) => {
                days_from_civil(y, m, d) * 86_400 + (hh * 3600 + mm * 60 + ss) as i64 - off
            }
            None => local_secs(y, m, d, hh, mm, ss),
        };
        Ok(Date::At(at))
    }

    /// When it begins: local midnight for a day.
    pub fn instant(&self) -> SystemTime {
        match *self {
            Date::Day { y, m, d } => from_secs(local_secs(y, m, d, 0, 0, 0)),
            Date::At(s) => from_secs(s),
        }
    }
}

impl fmt::Display for Date {
    /// The canonical text: `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Date::Day { y, m, d } => write!(f, "{y:04}-{m:02}-{d:02}"),
            Date::At(s) => {
                let (y, m, d) = civil_from_days(s.div_euclid(86_400));
                let r = s.rem_euclid(86_400);
                write!(
                    f,
                    "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                    r / 3600,
                    r / 60 % 60,
                    r % 60
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25T12:00:00Z
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_608_000)
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000i64, 0, 59, 60, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            days_from_civil(2026, 11, 25) * 86_400 + 43_200,
            1_795_608_000
        );
    }

    #[test]
    fn days_and_moments() {
        let d = Date::parse("2027-03-01", now()).unwrap();
        assert_eq!(
            d,
            Date::Day {
                y: 2027,
                m: 3,
                d: 1
            }
        );
        assert_eq!(d.to_string(), "2027-03-01");
        let z = Date::parse("2027-03-01T14:00:00Z", now()).unwrap();
        assert_eq!(z.to_string(), "2027-03-01T14:00:00Z");
        let off = Date::parse("2027-03-01T15:00+01:00", now()).unwrap();
        assert_eq!(off, z);
        assert_eq!(Date::parse("2027-03-01 13:00-01:00", now()).unwrap(), z);
        // The canonical text parses to the same date.
        for s in ["2027-03-01", "2027-03-01T14:00:00Z", "2024-02-29"] {
            let d = Date::parse(s, now()).unwrap();
            assert_eq!(Date::parse(&d.to_string(), now()).unwrap(), d);
        }
        // Local forms agree with the C library.
        let local = Date::parse("2027-03-01T14:00", now()).unwrap();
        assert_eq!(local, Date::At(local_secs(2027, 3, 1, 14, 0, 0)));
        assert_eq!(d.instant(), from_secs(local_secs(2027, 3, 1, 0, 0, 0)));
    }

    #[test]
    fn spans_from_a_fixed_today() {
        let (y, m, d) = local_day(now());
        let base = days_from_civil(y, m, d);
        let p = |s: &str| Date::parse(s, now()).unwrap();
        let day = |z: i64| {
            let (y, m, d) = civil_from_days(z);
            Date::Day { y, m, d }
        };
        assert_eq!(p("+90d"), day(base + 90));
        assert_eq!(p("+0d"), day(base));
        assert_eq!(p("+2w"), day(base + 14));
        // Months clamp to the month's length; years are calendar years.
        let jan31 = |s: &str| {
            let t = UNIX_EPOCH
                + Duration::from_secs((days_from_civil(2027, 1, 31) * 86_400 + 43_200) as u64);
            Date::parse(s, t).unwrap()
        };
        assert_eq!(
            jan31("+1m"),
            Date::Day {
                y: 2027,
                m: 2,
                d: 28
            }
        );
        assert_eq!(
            jan31("+13m"),
            Date::Day {
                y: 2028,
                m: 2,
                d: 29
            }
        );
        assert_eq!(
            jan31("+1y"),
            Date::Day {
                y: 2028,
                m: 1,
                d: 31
            }
        );
    }

    #[test]
    fn bad_dates_are_refused_clearly() {
        for s in [
            "",
            "tomorrow",
            "2027-02-30",
            "2027-13-01",
            "27-03-01",
            "2027-3-1",
            "+5x",
            "+d",
            "+-3d",
            "2027-03-01T25:00",
            "2027-03-01T14:00+1",
            "1969-12-31",
            "2027-03-01T14:00:00:00",
            "+99999999d",
        ] {
            let e = Date::parse(s, now()).unwrap_err();
            assert!(e.to_string().contains("use a day like"), "{s}: {e}");
        }
    }
}
