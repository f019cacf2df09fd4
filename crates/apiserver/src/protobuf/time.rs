//! `metav1.Time` and `metav1.MicroTime` from their wire form (Unix seconds
//! and nanoseconds) to the RFC 3339 text their JSON uses.
//!
//! Hand-rolled rather than through a date crate because the rules are Go's,
//! not RFC 3339's in general: always UTC with `Z`, whole seconds for `Time`
//! (Go's `time.RFC3339` layout prints no fraction), exactly six digits for
//! `MicroTime` (nanoseconds truncated), and Go's zero time
//! (0001-01-01T00:00:00Z, "unset") as JSON null.

use serde_json::Value;

/// Unix seconds of Go's zero `time.Time`, 0001-01-01T00:00:00Z.
const GO_ZERO_UNIX: i128 = -62_135_596_800;

/// Days from 1970-01-01 to 0000-01-01 and to 9999-12-31: the years a
/// four-digit RFC 3339 year can hold.
const FIRST_DAY: i128 = -719_528;
const LAST_DAY: i128 = 2_932_896;

/// Format a timestamp as Go's JSON would. Nanoseconds outside one second are
/// carried into the seconds, as Go's `time.Unix` does.
pub(crate) fn format(seconds: i64, nanos: i64, micro: bool) -> Result<Value, String> {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let secs = total.div_euclid(1_000_000_000);
    let mut frac = total.rem_euclid(1_000_000_000);
    if micro {
        frac -= frac % 1_000;
    }
    if secs == GO_ZERO_UNIX && frac == 0 {
        return Ok(Value::Null);
    }
    let days = secs.div_euclid(86_400);
    if !(FIRST_DAY..=LAST_DAY).contains(&days) {
        return Err(format!(
            "timestamp {seconds}s is outside the years 0000 to 9999"
        ));
    }
    let of_day = secs.rem_euclid(86_400);
    // In range by the check above, so the narrowing cannot truncate.
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let text = if micro {
        format!(
            "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:06}Z",
            frac / 1_000
        )
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    };
    Ok(Value::String(text))
}

/// (year, month, day) of the proleptic Gregorian calendar for a day count
/// from 1970-01-01, counting in 400-year eras that start on March 1st so
/// that the leap day falls at the end of each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64, n: i64) -> Value {
        format(s, n, false).unwrap()
    }

    #[test]
    fn times_match_go() {
        assert_eq!(t(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(t(1_704_164_645, 999_999_999), "2024-01-02T03:04:05Z");
        assert_eq!(t(951_868_799, 0), "2000-02-29T23:59:59Z");
        assert_eq!(t(-2_203_891_200, 0), "1900-03-01T00:00:00Z");
        assert_eq!(t(253_402_300_799, 0), "9999-12-31T23:59:59Z");
        assert_eq!(t(-1, 0), "1969-12-31T23:59:59Z");
        // Nanoseconds carry, both ways.
        assert_eq!(t(0, -1), "1969-12-31T23:59:59Z");
        assert_eq!(t(0, 2_000_000_000), "1970-01-01T00:00:02Z");
        assert_eq!(t(-62_135_596_800, 0), Value::Null);
        assert_eq!(t(-62_135_596_801, 0), "0000-12-31T23:59:59Z");
        assert_eq!(t(-62_167_219_200, 0), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn micro_times_match_go() {
        assert_eq!(
            format(1_704_164_645, 123_456_789, true).unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(format(0, 0, true).unwrap(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format(-62_135_596_800, 999, true).unwrap(), Value::Null);
    }

    #[test]
    fn out_of_range_is_an_error() {
        assert!(format(253_402_300_800, 0, false).is_err());
        assert!(format(-62_167_219_201, 0, false).is_err());
        assert!(format(i64::MAX, i64::MAX, false).is_err());
        assert!(format(i64::MIN, i64::MIN, true).is_err());
    }
}
