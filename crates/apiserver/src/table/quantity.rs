//! `resource.Quantity`'s canonical form, as its `String()` prints it in the
//! CAPACITY and quota cells: `1000` is `1k`, `1.5` is `1500m`, `1024Mi` is
//! `1Gi`, `0.5Gi` is `512Mi`, and sub-nano precision rounds up.
//!
//! Upstream canonicalizes on decode, so its tables never show what the user
//! typed unless that was already canonical; objects stored here keep the
//! user's spelling, so the printer canonicalizes instead.

/// The canonical form of a quantity string; a string that does not parse as
/// a quantity is returned unchanged.
pub fn canonical(text: &str) -> String {
    parse(text).unwrap_or_else(|| text.to_string())
}

/// How the quantity was written, which decides how it prints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `Ki`, `Mi`, ... suffixes.
    BinarySi,
    /// No suffix or `n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`.
    DecimalSi,
    /// `e3`, `E-2`...
    DecimalExponent,
}

/// `(base-2 exponent, base-10 exponent, format)` of a suffix.
fn suffix(s: &str) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((0, e, Format::DecimalSi));
    match s {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => Some((10, 0, Format::BinarySi)),
        "Mi" => Some((20, 0, Format::BinarySi)),
        "Gi" => Some((30, 0, Format::BinarySi)),
        "Ti" => Some((40, 0, Format::BinarySi)),
        "Pi" => Some((50, 0, Format::BinarySi)),
        "Ei" => Some((60, 0, Format::BinarySi)),
        _ => {
            let exp = s.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((0, exp.parse().ok()?, Format::DecimalExponent))
        }
    }
}

fn pow10(n: u32) -> Option<u128> {
    10u128.checked_pow(n)
}

fn parse(text: &str) -> Option<String> {
    if text == "0" {
        return Some("0".to_string());
    }
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suf) = rest.split_at(digits_end);
    let (num, denom) = number.split_once('.').unwrap_or((number, ""));
    if denom.contains('.') || (num.is_empty() && denom.is_empty()) {
        return None;
    }
    // Leading zeros go, but an all-zero integer part stays "0", which keeps
    // e.g. `0.500` out of the already-canonical shortcut below, as upstream.
    let num = match num.trim_start_matches('0') {
        "" => "0",
        n => n,
    };
    let (bin_exp, dec_exp, format) = suffix(suf)?;

    // Upstream keeps the user's string when it is already canonical and fits
    // its int64 fast path; reproduce that so e.g. `1E3` stays `1E3`.
    let shifted = format!("{num}{denom}");
    let fast = num.len() + denom.len() <= 18;
    let value: u128 = if shifted.is_empty() {
        0
    } else {
        shifted.parse().ok()?
    };
    match format {
        Format::BinarySi if fast && denom.is_empty() && value & 7 != 0 => {
            return Some(text.to_string())
        }
        Format::DecimalSi | Format::DecimalExponent
            if fast
                && dec_exp - denom.len() as i32 >= -9
                && (dec_exp - denom.len() as i32) % 3 == 0
                && !shifted.ends_with("000")
                && !shifted.starts_with('0') =>
        {
            return Some(text.to_string());
        }
        _ => {}
    }

    // The exact value is mantissa × 10^exp.
    let mut mantissa = value.checked_mul(1u128.checked_shl(bin_exp)?)?;
    let mut exp = dec_exp - denom.len() as i32;
    // Precision beyond nano rounds up (away from zero).
    if exp < -9 {
        let div = pow10((-9 - exp) as u32)?;
        mantissa = mantissa / div + u128::from(mantissa % div != 0);
        exp = -9;
    }
    if mantissa == 0 {
        return Some("0".to_string());
    }
    let sign = if negative { "-" } else { "" };

    let mut format = format;
    if format == Format::BinarySi {
        let integer = if exp >= 0 {
            mantissa.checked_mul(pow10(exp as u32)?)
        } else {
            let div = pow10((-exp) as u32)?;
            (mantissa % div == 0).then(|| mantissa / div)
        };
        match integer {
            // Small or fractional binary quantities print in decimal.
            Some(n) if n >= 1024 => {
                let mut n = n;
                let mut k = 0;
                while k < 6 && n % 1024 == 0 {
                    n /= 1024;
                    k += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
                return Some(format!("{sign}{n}{suffix}"));
            }
            _ => format = Format::DecimalSi,
        }
    }

    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp += 1;
    }
    match exp.rem_euclid(3) {
        1 => {
            mantissa = mantissa.checked_mul(10)?;
            exp -= 1;
        }
        2 => {
            mantissa = mantissa.checked_mul(100)?;
            exp -= 2;
        }
        _ => {}
    }
    let suffix = match format {
        Format::DecimalExponent if exp == 0 => String::new(),
        Format::DecimalExponent => format!("e{exp}"),
        _ => match exp {
            -9 => "n".to_string(),
            -6 => "u".to_string(),
            -3 => "m".to_string(),
            0 => String::new(),
            3 => "k".to_string(),
            6 => "M".to_string(),
            9 => "G".to_string(),
            12 => "T".to_string(),
            15 => "P".to_string(),
            18 => "E".to_string(),
            _ => format!("e{exp}"),
        },
    };
    Some(format!("{sign}{mantissa}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("0", "0"),
            ("0Gi", "0"),
            ("0.0", "0"),
            ("1", "1"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("1.5", "1500m"),
            ("0.1", "100m"),
            ("1000", "1k"),
            ("2000M", "2G"),
            ("10Gi", "10Gi"),
            ("8Gi", "8Gi"),
            ("1024Mi", "1Gi"),
            ("0.5Gi", "512Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("1.1Ki", "1126400m"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("12e2", "1200"),
            ("1e-3", "1e-3"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("-1.5", "-1500m"),
            ("0.500", "500m"),
            (".5", "500m"),
            ("abc", "abc"),
            ("1.2.3", "1.2.3"),
            ("5Qi", "5Qi"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
    }
}
