//! Resource quantities (`100m`, `1.5`, `512Mi`, `2G`, `1e3`) as integers:
//! milli-units for CPU, units for everything else, rounded up as upstream
//! rounds requests.

/// The value of a quantity times 1000 (milli-units), rounded up; `None` if
/// it does not parse.
pub fn parse_milli(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    // An exponent (`1e3`, `2E-1`) is a suffix to upstream's grammar.
    let (num, exp10): (&str, i32) = match suffix.strip_prefix(['e', 'E']) {
        Some(e) => (num, e.parse().ok()?),
        None => (num, 0),
    };
    let suffix = if exp10 != 0 || suffix.starts_with(['e', 'E']) {
        ""
    } else {
        suffix
    };
    let (mult_num, mult_den): (i128, i128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        _ => return None,
    };
    let (neg, num) = match num.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut value: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    // value * 10^(exp10 - frac.len()) * mult * 1000, rounded up.
    let mut num_scale: i128 = mult_num * 1000;
    let mut den_scale: i128 = mult_den;
    let e = exp10 - frac.len() as i32;
    if e >= 0 {
        num_scale = num_scale.checked_mul(10i128.checked_pow(e as u32)?)?;
    } else {
        den_scale = den_scale.checked_mul(10i128.checked_pow((-e) as u32)?)?;
    }
    value = value.checked_mul(num_scale)?;
    let out = (value + den_scale - 1) / den_scale;
    Some(if neg { -out } else { out })
}

/// CPU in millicores.
pub fn cpu_milli(q: &str) -> i64 {
    parse_milli(q).unwrap_or(0).clamp(0, i64::MAX as i128) as i64
}

/// Any other resource in whole units (bytes for memory), rounded up.
pub fn units(q: &str) -> i64 {
    let m = parse_milli(q).unwrap_or(0).max(0);
    ((m + 999) / 1000).min(i64::MAX as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_milli("100m"), 100);
        assert_eq!(cpu_milli("1"), 1000);
        assert_eq!(cpu_milli("1.5"), 1500);
        assert_eq!(cpu_milli("0.1"), 100);
        assert_eq!(cpu_milli("2k"), 2_000_000);
        assert_eq!(units("512Mi"), 512 << 20);
        assert_eq!(units("1Gi"), 1 << 30);
        assert_eq!(units("1G"), 1_000_000_000);
        assert_eq!(units("1e3"), 1000);
        assert_eq!(units("1.5Ki"), 1536);
        assert_eq!(units("110"), 110);
        assert_eq!(units("100m"), 1);
        assert_eq!(parse_milli("x"), None);
        assert_eq!(parse_milli(""), None);
        assert_eq!(parse_milli("1Zi"), None);
    }
}
