//! Resource quantities (`resource.Quantity`): parsing, comparison and the
//! canonical form upstream stores ("0.5" becomes "500m", "1024Mi" becomes
//! "1Gi"), so that `kubectl get -o yaml` shows what a real cluster shows.

use std::cmp::Ordering;

use serde_json::Value;

const NANO: u128 = 1_000_000_000;

/// Upstream's `ErrFormatWrong`.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// How a quantity was written, which decides how it is written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `m`, `k`, `M`, ... or no suffix.
    DecimalSi,
    /// `Ki`, `Mi`, ...
    BinarySi,
    /// `e3`, `E-2`, ...
    DecimalExponent,
}

/// A parsed quantity, held exactly in units of 10^-9 (upstream rounds finer
/// values up to the nano scale too).
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    /// The value times 10^9.
    pub nanos: i128,
    /// The suffix family it was written in.
    pub format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.nanos.cmp(&other.nanos))
    }
}

fn suffix(s: &str) -> Option<(u32, i32, Format)> {
    let d = |e| Some((10, e, Format::DecimalSi));
    let b = |e| Some((2, e, Format::BinarySi));
    match s {
        "" => d(0),
        "n" => d(-9),
        "u" => d(-6),
        "m" => d(-3),
        "k" => d(3),
        "M" => d(6),
        "G" => d(9),
        "T" => d(12),
        "P" => d(15),
        "E" => d(18),
        "Ki" => b(10),
        "Mi" => b(20),
        "Gi" => b(30),
        "Ti" => b(40),
        "Pi" => b(50),
        "Ei" => b(60),
        _ => {
            let rest = s.strip_prefix('e').or_else(|| s.strip_prefix('E'))?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some((10, rest.parse().ok()?, Format::DecimalExponent))
        }
    }
}

/// A value too large to hold: upstream caps quantities, so do we.
const CAP: i128 = i128::MAX / 4;

fn div_ceil(a: u128, b: u128) -> u128 {
    a / b + u128::from(!a.is_multiple_of(b))
}

/// Parse a quantity string.
pub fn parse(s: &str) -> Result<Quantity, String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let num_len = body
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.')
        .count();
    let (num, suf) = body.split_at(num_len);
    if num.bytes().filter(|c| *c == b'.').count() > 1 || !num.bytes().any(|c| c.is_ascii_digit()) {
        return Err(FORMAT_ERROR.to_string());
    }
    let (base, exp, format) = suffix(suf).ok_or_else(|| FORMAT_ERROR.to_string())?;
    let (int_part, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = format!("{int_part}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return Ok(Quantity {
            nanos: if neg { -CAP } else { CAP },
            format,
        });
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| FORMAT_ERROR.to_string())?
    };
    let frac_digits = frac.len() as i32;
    let capped = || {
        Ok(Quantity {
            nanos: if neg { -CAP } else { CAP },
            format,
        })
    };
    let magnitude: u128 = if base == 10 {
        let shift = 9 - frac_digits + exp;
        if shift >= 0 {
            match 10u128
                .checked_pow(shift as u32)
                .and_then(|p| mantissa.checked_mul(p))
            {
                Some(v) => v,
                None if mantissa == 0 => 0,
                None => return capped(),
            }
        } else {
            match 10u128.checked_pow((-shift) as u32) {
                Some(p) => div_ceil(mantissa, p),
                None => u128::from(mantissa != 0),
            }
        }
    } else {
        let scaled = 2u128
            .checked_pow(exp as u32)
            .and_then(|p| mantissa.checked_mul(p))
            .and_then(|v| v.checked_mul(NANO));
        match (scaled, 10u128.checked_pow(frac_digits as u32)) {
            (Some(v), Some(p)) => div_ceil(v, p),
            _ => return capped(),
        }
    };
    let nanos = i128::try_from(magnitude).unwrap_or(CAP).min(CAP);
    Ok(Quantity {
        nanos: if neg { -nanos } else { nanos },
        format,
    })
}

/// Parse a JSON value: a string, or a bare number as YAML manifests often
/// carry (`cpu: 1`), which upstream accepts too.
pub fn parse_value(v: &Value) -> Option<Result<Quantity, String>> {
    match v {
        Value::String(s) => Some(parse(s)),
        Value::Number(n) => Some(parse(&n.to_string())),
        Value::Null => None,
        _ => Some(Err(FORMAT_ERROR.to_string())),
    }
}

impl Quantity {
    /// The canonical string upstream serializes.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let mag = self.nanos.unsigned_abs();
        let mut format = self.format;
        if format == Format::BinarySi && (mag < 1024 * NANO || !mag.is_multiple_of(NANO)) {
            // Small or fractional binary amounts would lose precision.
            format = Format::DecimalSi;
        }
        if format == Format::BinarySi {
            let mut v = mag / NANO;
            let mut e = 0;
            while v.is_multiple_of(1024) && e < 6 {
                v /= 1024;
                e += 1;
            }
            return format!("{sign}{v}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e]);
        }
        let mut m = mag;
        let mut e: i32 = -9;
        while m.is_multiple_of(10) {
            m /= 10;
            e += 1;
        }
        let r = e.rem_euclid(3);
        m *= 10u128.pow(r as u32);
        e -= r;
        let suf = match (format, e) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{sign}{m}{suf}")
    }

    /// Whether the value is a whole number.
    pub fn is_integer(&self) -> bool {
        self.nanos % NANO as i128 == 0
    }
}

/// Rewrite every parseable quantity of a resource list in canonical form,
/// as upstream's round trip through `resource.Quantity` does.
pub fn canonicalize_list(v: Option<&mut Value>) {
    let Some(m) = v.and_then(Value::as_object_mut) else {
        return;
    };
    for q in m.values_mut() {
        if let Some(Ok(p)) = parse_value(q) {
            *q = Value::String(p.canonical());
        }
    }
}

/// Canonicalize one quantity field in place.
pub fn canonicalize(v: Option<&mut Value>) {
    if let Some(q) = v {
        if let Some(Ok(p)) = parse_value(q) {
            *q = Value::String(p.canonical());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(s: &str) -> String {
        parse(s).unwrap().canonical()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("1.5"), "1500m");
        assert_eq!(c("2000m"), "2");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("1000"), "1k");
        assert_eq!(c("128974848"), "128974848");
        assert_eq!(c("129e6"), "129e6");
        assert_eq!(c("123Mi"), "123Mi");
        assert_eq!(c("100m"), "100m");
        assert_eq!(c("0"), "0");
        assert_eq!(c("-1"), "-1");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("10G"), "10G");
    }

    #[test]
    fn compare_and_errors() {
        assert!(parse("1").unwrap() > parse("999m").unwrap());
        assert!(parse("1Gi").unwrap() == parse("1073741824").unwrap());
        assert!(parse("1Ki").unwrap() > parse("1k").unwrap());
        assert!(parse("abc").is_err());
        assert!(parse("1.2.3").is_err());
        assert!(parse("1Qi").is_err());
        assert!(parse("").is_err());
        assert!(parse("1").unwrap().is_integer());
        assert!(!parse("1500m").unwrap().is_integer());
        assert_eq!(parse_value(&json!(2)).unwrap().unwrap().canonical(), "2");
        let mut l = json!({ "cpu": 0.5, "memory": "1024Mi" });
        canonicalize_list(Some(&mut l));
        assert_eq!(l, json!({ "cpu": "500m", "memory": "1Gi" }));
    }
}
