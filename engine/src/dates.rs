//! Dates and times for tenant code: what a bookkeeper or a dispatcher means by "the start of the
//! month", "three days later" or "next month's same day", in the tenant's time zone
//! (`time_zone:` of `tenant.yaml`, an IANA name; UTC when absent).
//!
//! Values stay what fields and the context hold: a date is `"YYYY-MM-DD"`, an instant an RFC 3339
//! string (`now`, `created_at`, `datetime` fields). Every function takes and returns such strings,
//! so scripts and guards never handle a time object, and an answer can be stored as it is:
//! instants come back in UTC with microseconds at most (what Postgres keeps).
//!
//! Calendar arithmetic (`days`, `weeks`, `months`, `years`) happens on the local date in the
//! tenant's zone and keeps the local time of day: one day after 09:00 the day before a DST change
//! is 09:00 (23 or 25 hours later); a month after 31 January is the last day of February. Exact
//! arithmetic (`seconds`, `minutes`, `hours`) adds elapsed time. A local time that does not exist
//! (skipped by a DST change) moves forward by the gap; one that exists twice takes the earlier.
//!
//! Pure: no clock, no IO. The Rhai functions are registered by [`crate::script`].

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    SecondsFormat, SubsecRound, TimeZone, Utc,
};
pub use chrono_tz::Tz;

/// The zone of a tenant that names none.
pub const UTC: Tz = chrono_tz::UTC;

thread_local! {
    /// The zone of the tenant whose rules run on this thread (see [`in_zone`]).
    static ZONE: std::cell::Cell<Tz> = const { std::cell::Cell::new(chrono_tz::UTC) };
}

/// Runs `f` with `zone` as the zone of the JSON-Logic date operators on this thread (a
/// transition's guards and load expressions run inside it), restoring the previous one after.
pub fn in_zone<T>(zone: Tz, f: impl FnOnce() -> T) -> T {
    struct Restore(Tz);
    impl Drop for Restore {
        fn drop(&mut self) {
            ZONE.with(|z| z.set(self.0));
        }
    }
    let _restore = Restore(ZONE.with(|z| z.replace(zone)));
    f()
}

/// The JSON-Logic operators (`{"date_add": [v, n, unit]}`, …): the same functions as the Rhai
/// ones, in the zone of [`in_zone`].
pub const LOGIC_OPERATORS: &[&str] =
    &["date_add", "date_diff", "start_of", "to_date", "format_date", "is_before", "is_after", "weekday"];

/// Evaluates a date operator of [`LOGIC_OPERATORS`] on its evaluated arguments.
pub fn logic_call(name: &str, args: &[serde_json::Value]) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    let tz = ZONE.with(|z| z.get());
    let text = |i: usize| -> Result<&str> {
        args.get(i)
            .and_then(J::as_str)
            .ok_or_else(|| DateError(format!("{name}: argument {} must be a date or a date-time string", i + 1)))
    };
    let int = |i: usize| -> Result<i64> {
        args.get(i)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)))
            .ok_or_else(|| DateError(format!("{name}: argument {} must be a whole number", i + 1)))
    };
    let named = |e: DateError| DateError(format!("{name}: {e}"));
    Ok(match name {
        "date_add" => J::String(add(text(0)?, int(1)?, text(2)?, tz).map_err(named)?),
        "date_diff" => J::from(diff(text(0)?, text(1)?, text(2)?, tz).map_err(named)?),
        "start_of" => J::String(start_of(text(0)?, text(1)?, tz).map_err(named)?),
        "to_date" => J::String(to_date(text(0)?, tz).map_err(named)?),
        "format_date" => J::String(format(text(0)?, text(1)?, tz).map_err(named)?),
        "is_before" => J::Bool(before(text(0)?, text(1)?, tz).map_err(named)?),
        "is_after" => J::Bool(before(text(1)?, text(0)?, tz).map_err(named)?),
        "weekday" => J::from(weekday(text(0)?, tz).map_err(named)?),
        other => return Err(DateError(format!("`{other}` is not a date operator"))),
    })
}

/// A tenant code mistake with a date: its message says what and which value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DateError(pub String);

type Result<T> = std::result::Result<T, DateError>;

/// The largest amount of a unit one call may add: far beyond any business date, small enough that
/// nothing overflows.
const MAX_AMOUNT: i64 = 1_000_000;
/// Format strings are short: a date's rendering, not a document.
const MAX_FORMAT: usize = 100;

/// A parsed value: a calendar date, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

/// The tenant's zone from its IANA name.
pub fn zone(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| DateError(format!("`{name}` is not a time zone (an IANA name such as Africa/Nairobi)")))
}

/// `"2026-01-31"` → a date; an RFC 3339 string → an instant.
pub fn parse(value: &str) -> Result<Moment> {
    if value.len() == 10 {
        if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return Ok(Moment::Date(d));
        }
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| Moment::Instant(t.with_timezone(&Utc)))
        .map_err(|_| DateError(format!("`{}` is neither a date (YYYY-MM-DD) nor a date-time (RFC 3339)", cut(value))))
}

/// The canonical text of a moment: `YYYY-MM-DD`, or RFC 3339 in UTC with at most microseconds.
pub fn show(m: Moment) -> String {
    match m {
        Moment::Date(d) => d.format("%Y-%m-%d").to_string(),
        Moment::Instant(t) => t.trunc_subsecs(6).to_rfc3339_opts(SecondsFormat::AutoSi, true),
    }
}

/// `value` plus `amount` `unit`s (`seconds`, `minutes`, `hours`, `days`, `weeks`, `months`,
/// `years`, singular or plural; negative amounts go back). A date stays a date (only calendar
/// units apply to it).
pub fn add(value: &str, amount: i64, unit: &str, tz: Tz) -> Result<String> {
    if amount.unsigned_abs() > MAX_AMOUNT as u64 {
        return Err(DateError(format!("{amount} {unit} is too far (at most {MAX_AMOUNT})")));
    }
    let unit = Unit::parse(unit)?;
    let out = match (parse(value)?, unit) {
        (Moment::Instant(t), Unit::Exact(seconds)) => Moment::Instant(
            t.checked_add_signed(Duration::seconds(seconds * amount)).ok_or_else(|| out_of_range(value))?,
        ),
        (Moment::Date(_), Unit::Exact(_)) => {
            return Err(DateError(format!("`{value}` is a date: add days, weeks, months or years to it")));
        }
        (Moment::Date(d), Unit::Calendar(c)) => Moment::Date(c.add(d, amount).ok_or_else(|| out_of_range(value))?),
        (Moment::Instant(t), Unit::Calendar(c)) => {
            let local = t.with_timezone(&tz).naive_local();
            let date = c.add(local.date(), amount).ok_or_else(|| out_of_range(value))?;
            Moment::Instant(local_to_utc(date.and_time(local.time()), tz)?)
        }
    };
    Ok(show(out))
}

/// How many whole `unit`s from `a` to `b` (negative when `b` is earlier). `days` and `weeks`
/// count calendar days between the local dates; `months` and `years` whole months, the way
/// [`add`] counts them (31 January + 1 month is 28 February, so that is one month, and 15
/// January to 14 March is one); the exact units count elapsed time.
pub fn diff(a: &str, b: &str, unit: &str, tz: Tz) -> Result<i64> {
    let (a, b) = (parse(a)?, parse(b)?);
    match Unit::parse(unit)? {
        Unit::Exact(seconds) => match (a, b) {
            (Moment::Instant(a), Moment::Instant(b)) => Ok((b - a).num_seconds() / seconds),
            _ => Err(DateError("seconds, minutes and hours are counted between date-times, not dates".to_string())),
        },
        Unit::Calendar(c) => {
            let (da, db) = (local_date(a, tz), local_date(b, tz));
            Ok(match c {
                Calendar::Days(n) => (db - da).num_days() / n as i64,
                Calendar::Months(n) => {
                    let months = (db.year() - da.year()) as i64 * 12 + db.month() as i64 - da.month() as i64;
                    // A month is not complete until the day of the month is reached (clamped to
                    // the end of a shorter month).
                    let adjust = if months > 0 && Calendar::Months(1).add(da, months).is_some_and(|d| d > db) {
                        -1
                    } else if months < 0 && Calendar::Months(1).add(da, months).is_some_and(|d| d < db) {
                        1
                    } else {
                        0
                    };
                    (months + adjust) / n as i64
                }
            })
        }
    }
}

/// The start of the `day`, `week` (Monday), `month` or `year` that holds `value`, in the tenant's
/// zone: an instant for an instant (e.g. `2026-03-01T00:00:00+03:00` as UTC), a date for a date.
pub fn start_of(value: &str, unit: &str, tz: Tz) -> Result<String> {
    let m = parse(value)?;
    let date = local_date(m, tz);
    let start = match unit {
        "day" => date,
        "week" => date - Days::new(date.weekday().num_days_from_monday() as u64),
        "month" => date.with_day(1).ok_or_else(|| out_of_range(value))?,
        "year" => NaiveDate::from_ymd_opt(date.year(), 1, 1).ok_or_else(|| out_of_range(value))?,
        other => return Err(DateError(format!("start_of: `{other}` is not day, week, month or year"))),
    };
    Ok(show(match m {
        Moment::Date(_) => Moment::Date(start),
        Moment::Instant(_) => Moment::Instant(local_to_utc(start.and_time(NaiveTime::MIN), tz)?),
    }))
}

/// The date `value` falls on in the tenant's zone (a date stays itself).
pub fn to_date(value: &str, tz: Tz) -> Result<String> {
    Ok(show(Moment::Date(local_date(parse(value)?, tz))))
}

/// `value` written with a strftime format (`%d %b %Y`, `%H:%M`), in the tenant's zone.
pub fn format(value: &str, fmt: &str, tz: Tz) -> Result<String> {
    let items = format_items(fmt)?;
    Ok(match parse(value)? {
        Moment::Date(d) => {
            if items.iter().any(is_time_item) {
                return Err(DateError(format!("`{}` shows a time of day; `{value}` is a date", cut(fmt))));
            }
            d.format_with_items(items.iter()).to_string()
        }
        Moment::Instant(t) => t.with_timezone(&tz).format_with_items(items.iter()).to_string(),
    })
}

/// Reads `text` written in `fmt`: a date when the format has no time of day, else a local
/// date-time in the tenant's zone (or with the offset the text gives), as an instant.
pub fn parse_with(text: &str, fmt: &str, tz: Tz) -> Result<String> {
    let items = format_items(fmt)?;
    let bad = || DateError(format!("`{}` does not read as `{}`", cut(text), cut(fmt)));
    if !items.iter().any(is_time_item) {
        return NaiveDate::parse_from_str(text, fmt).map(|d| show(Moment::Date(d))).map_err(|_| bad());
    }
    if let Ok(t) = DateTime::parse_from_str(text, fmt) {
        return Ok(show(Moment::Instant(t.with_timezone(&Utc))));
    }
    let local = NaiveDateTime::parse_from_str(text, fmt).map_err(|_| bad())?;
    Ok(show(Moment::Instant(local_to_utc(local, tz)?)))
}

/// Whether `a` is strictly before `b` (a date is its start of day in the tenant's zone).
pub fn before(a: &str, b: &str, tz: Tz) -> Result<bool> {
    Ok(instant(parse(a)?, tz)? < instant(parse(b)?, tz)?)
}

/// -1, 0 or 1 as `a` is before, at or after `b` (dates as their start of day in the zone).
pub fn compare(a: &str, b: &str, tz: Tz) -> Result<i64> {
    Ok(match instant(parse(a)?, tz)?.cmp(&instant(parse(b)?, tz)?) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })
}

/// The day of the week of `value` in the tenant's zone: 1 (Monday) to 7 (Sunday).
pub fn weekday(value: &str, tz: Tz) -> Result<i64> {
    Ok(local_date(parse(value)?, tz).weekday().number_from_monday() as i64)
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    /// Elapsed seconds per unit.
    Exact(i64),
    Calendar(Calendar),
}

#[derive(Debug, Clone, Copy)]
enum Calendar {
    Days(u32),
    Months(u32),
}

impl Unit {
    fn parse(unit: &str) -> Result<Unit> {
        Ok(match unit.strip_suffix('s').unwrap_or(unit) {
            "second" => Unit::Exact(1),
            "minute" => Unit::Exact(60),
            "hour" => Unit::Exact(3600),
            "day" => Unit::Calendar(Calendar::Days(1)),
            "week" => Unit::Calendar(Calendar::Days(7)),
            "month" => Unit::Calendar(Calendar::Months(1)),
            "year" => Unit::Calendar(Calendar::Months(12)),
            _ => {
                return Err(DateError(format!(
                    "`{}` is not a unit (seconds, minutes, hours, days, weeks, months, years)",
                    cut(unit)
                )))
            }
        })
    }
}

impl Calendar {
    fn add(self, d: NaiveDate, amount: i64) -> Option<NaiveDate> {
        match self {
            Calendar::Days(n) => {
                let days = amount.checked_mul(n as i64)?;
                if days >= 0 {
                    d.checked_add_days(Days::new(days as u64))
                } else {
                    d.checked_sub_days(Days::new(days.unsigned_abs()))
                }
            }
            Calendar::Months(n) => {
                let months = u32::try_from(amount.unsigned_abs().checked_mul(n as u64)?).ok()?;
                if amount >= 0 {
                    d.checked_add_months(Months::new(months))
                } else {
                    d.checked_sub_months(Months::new(months))
                }
            }
        }
    }
}

fn local_date(m: Moment, tz: Tz) -> NaiveDate {
    match m {
        Moment::Date(d) => d,
        Moment::Instant(t) => t.with_timezone(&tz).date_naive(),
    }
}

fn instant(m: Moment, tz: Tz) -> Result<DateTime<Utc>> {
    match m {
        Moment::Date(d) => local_to_utc(d.and_time(NaiveTime::MIN), tz),
        Moment::Instant(t) => Ok(t),
    }
}

/// A local date-time in `tz` as an instant: the earlier of two (a repeated hour), or moved
/// forward by the gap (a skipped hour).
fn local_to_utc(local: NaiveDateTime, tz: Tz) -> Result<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(early, _) => Ok(early.with_timezone(&Utc)),
        LocalResult::None => {
            // Inside a gap: read the wall-clock time with the offset in force before the gap
            // (01:30 in a gap from 01:00 to 02:00 is 02:30 after it).
            let before = tz.offset_from_utc_datetime(&(local - Duration::hours(12))).fix();
            let t = local - Duration::seconds(before.local_minus_utc() as i64);
            Ok(Utc.from_utc_datetime(&t))
        }
    }
}

fn format_items(fmt: &str) -> Result<Vec<Item<'_>>> {
    if fmt.len() > MAX_FORMAT {
        return Err(DateError(format!("a date format is at most {MAX_FORMAT} bytes")));
    }
    let items: Vec<Item<'_>> = StrftimeItems::new(fmt).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(DateError(format!("`{}` is not a date format (strftime: %Y-%m-%d, %d %b %Y, %H:%M)", cut(fmt))));
    }
    Ok(items)
}

fn is_time_item(item: &Item<'_>) -> bool {
    use chrono::format::{Fixed, Numeric};
    match item {
        Item::Numeric(n, _) => matches!(
            n,
            Numeric::Hour
                | Numeric::Hour12
                | Numeric::Minute
                | Numeric::Second
                | Numeric::Nanosecond
                | Numeric::Timestamp
        ),
        Item::Fixed(f) => matches!(
            f,
            Fixed::LowerAmPm
                | Fixed::UpperAmPm
                | Fixed::Nanosecond
                | Fixed::Nanosecond3
                | Fixed::Nanosecond6
                | Fixed::Nanosecond9
                | Fixed::TimezoneName
                | Fixed::TimezoneOffset
                | Fixed::TimezoneOffsetColon
                | Fixed::TimezoneOffsetZ
                | Fixed::RFC2822
                | Fixed::RFC3339
        ),
        _ => false,
    }
}

fn out_of_range(value: &str) -> DateError {
    DateError(format!("the result for `{}` is out of range", cut(value)))
}

/// At most 64 characters of a value in a message.
fn cut(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: Tz = chrono_tz::UTC;
    const NAIROBI: Tz = chrono_tz::Africa::Nairobi;
    const LONDON: Tz = chrono_tz::Europe::London;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    #[test]
    fn month_ends_clamp_and_leap_days_fall_back_to_the_28th() {
        assert_eq!(add("2026-01-31", 1, "month", UTC).as_deref(), Ok("2026-02-28"));
        assert_eq!(add("2028-01-31", 1, "month", UTC).as_deref(), Ok("2028-02-29"));
        assert_eq!(add("2026-03-31", -1, "months", UTC).as_deref(), Ok("2026-02-28"));
        assert_eq!(add("2028-02-29", 1, "year", UTC).as_deref(), Ok("2029-02-28"));
        assert_eq!(add("2028-02-29", 4, "years", UTC).as_deref(), Ok("2032-02-29"));
        assert_eq!(add("2026-12-31", 1, "day", UTC).as_deref(), Ok("2027-01-01"));
        assert_eq!(add("2028-02-28", 1, "day", UTC).as_deref(), Ok("2028-02-29"));
        // A month's instant keeps its local time (Nairobi, UTC+3 all year).
        assert_eq!(add("2026-01-31T07:00:00Z", 1, "month", NAIROBI).as_deref(), Ok("2026-02-28T07:00:00Z"));
        // The date is the local one: 22:30 UTC on 31 January is 01:30 on 1 February in Nairobi,
        // and a month later 01:30 on 1 March (22:30 UTC on 28 February).
        assert_eq!(add("2026-01-31T22:30:00Z", 1, "month", NAIROBI).as_deref(), Ok("2026-02-28T22:30:00Z"));
    }

    #[test]
    fn calendar_days_keep_the_local_time_across_dst_and_hours_are_elapsed_time() {
        // London springs forward on 29 March 2026 (01:00 → 02:00) and falls back on 25 October.
        let before = "2026-03-28T09:00:00Z"; // 09:00 GMT
        assert_eq!(add(before, 1, "day", LONDON).as_deref(), Ok("2026-03-29T08:00:00Z")); // 09:00 BST
        assert_eq!(add(before, 24, "hours", LONDON).as_deref(), Ok("2026-03-29T09:00:00Z")); // 10:00 BST
        assert_eq!(diff(before, "2026-03-29T08:00:00Z", "hours", LONDON), Ok(23));
        assert_eq!(diff(before, "2026-03-29T08:00:00Z", "days", LONDON), Ok(1));
        assert_eq!(add("2026-10-24T09:00:00Z", 1, "day", LONDON).as_deref(), Ok("2026-10-25T10:00:00Z"));
        // 01:30 on 29 March does not exist in London: it moves forward by the gap.
        assert_eq!(add("2026-03-28T01:30:00Z", 1, "day", LONDON).as_deref(), Ok("2026-03-29T01:30:00Z"));
        // 01:30 on 25 October exists twice: the earlier (BST, 00:30 UTC).
        assert_eq!(add("2026-10-24T00:30:00Z", 1, "day", LONDON).as_deref(), Ok("2026-10-25T00:30:00Z"));
        // New York: start of the DST day is midnight local (EST, UTC-5).
        assert_eq!(start_of("2026-03-08T15:00:00Z", "day", NEW_YORK).as_deref(), Ok("2026-03-08T05:00:00Z"));
        assert_eq!(start_of("2026-03-09T15:00:00Z", "day", NEW_YORK).as_deref(), Ok("2026-03-09T04:00:00Z"));
    }

    #[test]
    fn starts_of_periods_are_in_the_tenants_zone() {
        // 1 March 00:00 in Nairobi is 28 February 21:00 UTC.
        assert_eq!(start_of("2026-03-15T10:00:00Z", "month", NAIROBI).as_deref(), Ok("2026-02-28T21:00:00Z"));
        assert_eq!(start_of("2026-02-28T22:00:00Z", "month", NAIROBI).as_deref(), Ok("2026-02-28T21:00:00Z"));
        assert_eq!(start_of("2026-12-03", "week", UTC).as_deref(), Ok("2026-11-30"));
        assert_eq!(start_of("2026-12-03", "year", UTC).as_deref(), Ok("2026-01-01"));
        assert_eq!(to_date("2026-02-28T22:00:00Z", NAIROBI).as_deref(), Ok("2026-03-01"));
        assert_eq!(weekday("2026-12-03", UTC), Ok(4));
        assert!(start_of("2026-12-03", "fortnight", UTC).is_err());
    }

    #[test]
    fn differences_count_whole_units() {
        assert_eq!(diff("2026-01-31", "2026-02-28", "months", UTC), Ok(1));
        assert_eq!(diff("2026-01-31", "2026-02-27", "months", UTC), Ok(0));
        assert_eq!(diff("2026-01-31", "2026-03-01", "months", UTC), Ok(1));
        assert_eq!(diff("2026-01-15", "2026-03-14", "months", UTC), Ok(1));
        assert_eq!(diff("2026-03-14", "2026-01-15", "months", UTC), Ok(-1));
        assert_eq!(diff("2028-02-29", "2029-02-28", "years", UTC), Ok(1));
        assert_eq!(diff("2026-01-01", "2027-01-01", "days", UTC), Ok(365));
        assert_eq!(diff("2028-01-01", "2029-01-01", "days", UTC), Ok(366));
        assert_eq!(diff("2026-12-01", "2026-12-15", "weeks", UTC), Ok(2));
        assert!(diff("2026-12-01", "2026-12-15", "hours", UTC).is_err());
    }

    #[test]
    fn formats_and_parses_in_the_zone_and_refuses_bad_input() {
        assert_eq!(format("2026-02-28T21:00:00Z", "%d %b %Y %H:%M", NAIROBI).as_deref(), Ok("01 Mar 2026 00:00"));
        assert_eq!(format("2026-02-28", "%A %-d %B", UTC).as_deref(), Ok("Saturday 28 February"));
        assert!(format("2026-02-28", "%H:%M", UTC).is_err());
        assert!(format("2026-02-28", "%Q", UTC).is_err());
        assert_eq!(parse_with("31/01/2026", "%d/%m/%Y", UTC).as_deref(), Ok("2026-01-31"));
        assert_eq!(parse_with("31/01/2026 08:15", "%d/%m/%Y %H:%M", NAIROBI).as_deref(), Ok("2026-01-31T05:15:00Z"));
        assert!(parse_with("2026-13-01", "%Y-%m-%d", UTC).is_err());
        assert!(parse("yesterday").is_err());
        assert!(parse("2026-02-30").is_err());
        assert!(add("2026-01-01", 2_000_000, "days", UTC).is_err());
        assert!(add("2026-01-01", 1, "fortnights", UTC).is_err());
        assert!(add("2026-01-01", 3, "hours", UTC).is_err());
        assert!(zone("Mars/Olympus").is_err());
        assert_eq!(zone("Africa/Nairobi"), Ok(NAIROBI));
    }

    #[test]
    fn instants_compare_as_instants_whatever_their_offset_or_precision() {
        // As text, "…T10:00:00+03:00" sorts after "…T08:00:00Z"; as instants it is before.
        assert_eq!(before("2026-01-01T10:00:00+03:00", "2026-01-01T08:00:00Z", UTC), Ok(true));
        assert_eq!(compare("2026-01-01T08:00:00.000001Z", "2026-01-01T08:00:00Z", UTC), Ok(1));
        // A date is its local start of day.
        assert_eq!(compare("2026-01-01", "2025-12-31T21:00:00Z", NAIROBI), Ok(0));
        assert_eq!(show(parse("2026-01-01T08:00:00.123456789Z").expect("parses")), "2026-01-01T08:00:00.123456Z");
    }
}
