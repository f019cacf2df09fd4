//! String `format`s upstream validates in custom resources (kube-openapi's
//! strfmt registry, minus the formats upstream strips as unsupported).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `text` is valid for `format`; `None` for a format that is not
/// checked (unknown formats are accepted, as upstream ignores them).
pub fn check(format: &str, text: &str) -> Option<bool> {
    Some(match format {
        "date-time" | "datetime" => is_date_time(text),
        "date" => is_date(text),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_ok()
        }
        "ipv4" => text.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(text),
        "uuid" => is_uuid(text, None),
        "uuid3" => is_uuid(text, Some('3')),
        "uuid4" => is_uuid(text, Some('4')),
        "uuid5" => is_uuid(text, Some('5')),
        "hostname" => is_hostname(text),
        "email" => is_email(text),
        "mac" => is_mac(text),
        "duration" => is_duration(text),
        "uri" => is_uri(text),
        "hexcolor" => is_hexcolor(text),
        "bsonobjectid" => text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit()),
        "password" => true,
        _ => return None,
    })
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || !digits(y) || !digits(m) || !digits(d) {
        return false;
    }
    let (y, m, d): (i32, u8, u8) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return false,
    };
    let Ok(month) = time::Month::try_from(m) else {
        return false;
    };
    time::Date::from_calendar_date(y, month, d).is_ok()
}

fn is_clock(s: &str, seconds_required: bool) -> bool {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| !digits(f)) {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let ok_two =
        |p: &str, max: u8| p.len() == 2 && digits(p) && p.parse::<u8>().is_ok_and(|v| v <= max);
    match parts.as_slice() {
        [h, m, sec] => ok_two(h, 23) && ok_two(m, 59) && ok_two(sec, 60),
        [h, m] if !seconds_required && frac.is_none() => ok_two(h, 23) && ok_two(m, 59),
        _ => false,
    }
}

/// RFC 3339 and the ISO 8601 variants strfmt also accepts (local time,
/// minutes precision, offsets without a colon).
fn is_date_time(s: &str) -> bool {
    let Some((date, rest)) = s.split_once(['T', 't', ' ']) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let (clock, zone) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, "")
    } else if let Some(i) = rest.rfind(['+', '-']) {
        (&rest[..i], &rest[i..])
    } else {
        (rest, "")
    };
    let zone_ok = zone.is_empty() || {
        let z = &zone[1..];
        let z = z.replace(':', "");
        z.len() == 4 && digits(&z)
    };
    zone_ok && is_clock(clock, false)
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    digits(bits) && bits.parse::<u32>().is_ok_and(|b| b <= max)
}

fn is_uuid(s: &str, version: Option<char>) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    if groups.len() != 5
        || groups
            .iter()
            .zip(lens)
            .any(|(g, n)| g.len() != n || !g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return false;
    }
    match version {
        None => true,
        Some(v) => {
            groups[2].starts_with(v)
                && (v == '3' || groups[3].starts_with(['8', '9', 'a', 'b', 'A', 'B']))
        }
    }
}

fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    s.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

fn is_email(s: &str) -> bool {
    let addr = match (s.find('<'), s.strip_suffix('>')) {
        (Some(i), Some(inner)) => &inner[i + 1..],
        _ => s,
    };
    match addr.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !local.contains(' '),
        None => false,
    }
}

fn is_mac(s: &str) -> bool {
    for sep in [':', '-'] {
        let groups: Vec<&str> = s.split(sep).collect();
        if matches!(groups.len(), 6 | 8 | 20)
            && groups
                .iter()
                .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return true;
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    matches!(groups.len(), 3 | 4 | 10)
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Go's `time.ParseDuration` ("1h30m", "-1.5s") or strfmt's "3 days" form.
fn is_duration(s: &str) -> bool {
    let go = {
        let t = s.strip_prefix(['-', '+']).unwrap_or(s);
        if t == "0" {
            true
        } else {
            let mut rest = t;
            let mut any = false;
            let mut ok = !t.is_empty();
            while ok && !rest.is_empty() {
                let n = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                if n == 0 {
                    ok = false;
                    break;
                }
                rest = &rest[n..];
                let u = rest
                    .find(|c: char| c.is_ascii_digit() || c == '.')
                    .unwrap_or(rest.len());
                ok = matches!(
                    &rest[..u],
                    "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h"
                );
                rest = &rest[u..];
                any = true;
            }
            ok && any
        }
    };
    if go {
        return true;
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    match parts.as_slice() {
        [n, unit] => {
            digits(n)
                && matches!(
                    unit.trim_end_matches('s'),
                    "n" | "ns"
                        | "nano"
                        | "nanosecond"
                        | "u"
                        | "us"
                        | "µ"
                        | "µs"
                        | "micro"
                        | "microsecond"
                        | "m"
                        | "ms"
                        | "milli"
                        | "millisecond"
                        | "second"
                        | "sec"
                        | "min"
                        | "minute"
                        | "h"
                        | "hr"
                        | "hour"
                        | "d"
                        | "day"
                        | "w"
                        | "wk"
                        | "week"
                )
        }
        _ => false,
    }
}

/// `url.ParseRequestURI`: an absolute URI with a scheme, or an absolute path.
fn is_uri(s: &str) -> bool {
    if s.starts_with('/') {
        return !s.contains(char::is_whitespace);
    }
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn is_hexcolor(s: &str) -> bool {
    let h = s.strip_prefix('#').unwrap_or(s);
    matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let cases = [
            ("date-time", "2024-01-02T03:04:05Z", true),
            ("date-time", "2024-01-02T03:04:05.123+01:00", true),
            ("date-time", "2024-01-02T03:04", true),
            ("date-time", "2024-13-02T03:04:05Z", false),
            ("date-time", "now", false),
            ("date", "2024-02-29", true),
            ("date", "2023-02-29", false),
            ("byte", "aGVsbG8=", true),
            ("byte", "!!", false),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "10.0.0", false),
            ("ipv6", "::1", true),
            ("cidr", "10.0.0.0/8", true),
            ("cidr", "10.0.0.0/33", false),
            ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
            ("uuid4", "123e4567-e89b-42d3-a456-426614174000", true),
            ("uuid4", "123e4567-e89b-12d3-a456-426614174000", false),
            ("hostname", "my-host.example.com", true),
            ("hostname", "-bad", false),
            ("email", "a@b.c", true),
            ("email", "nope", false),
            ("mac", "01:23:45:67:89:ab", true),
            ("duration", "1h30m", true),
            ("duration", "3 days", true),
            ("duration", "soon", false),
            ("uri", "https://example.com/x", true),
            ("uri", "not a uri", false),
        ];
        for (f, v, ok) in cases {
            assert_eq!(check(f, v), Some(ok), "{f} {v}");
        }
        assert_eq!(check("int32", "x"), None);
    }
}
