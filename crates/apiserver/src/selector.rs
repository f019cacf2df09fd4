//! Label and field selectors, with upstream's grammar.

use std::collections::BTreeMap;

/// One label requirement.
#[derive(Clone, Debug, PartialEq)]
enum LabelOp {
    Exists,
    NotExists,
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

/// A parsed field selector: `field=value` and `field!=value` terms, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    /// (field, value, equal?)
    pub terms: Vec<(String, String, bool)>,
}

impl LabelSelector {
    /// Whether the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = labels.get(k);
            match op {
                LabelOp::Exists => v.is_some(),
                LabelOp::NotExists => v.is_none(),
                LabelOp::In(vals) => v.is_some_and(|v| vals.contains(v)),
                LabelOp::NotIn(vals) => v.is_none_or(|v| !vals.contains(v)),
                LabelOp::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                LabelOp::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }

    /// Parse upstream's selector syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h,i>1`.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
        };
        let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
        loop {
            skip_ws(&mut i);
            if i >= chars.len() {
                break;
            }
            let negated = chars[i] == '!';
            if negated {
                i += 1;
                skip_ws(&mut i);
            }
            let start = i;
            while i < chars.len() && is_key_char(chars[i]) {
                i += 1;
            }
            let key: String = chars[start..i].iter().collect();
            if key.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: identifier",
                    rest(&chars, i)
                ));
            }
            validate_key(&key)?;
            skip_ws(&mut i);
            if negated {
                reqs.push((key, LabelOp::NotExists));
            } else if i >= chars.len() || chars[i] == ',' {
                reqs.push((key, LabelOp::Exists));
            } else {
                let op = if s_at(&chars, i, "==") {
                    i += 2;
                    "="
                } else if s_at(&chars, i, "!=") {
                    i += 2;
                    "!="
                } else if chars[i] == '=' {
                    i += 1;
                    "="
                } else if chars[i] == '>' {
                    i += 1;
                    ">"
                } else if chars[i] == '<' {
                    i += 1;
                    "<"
                } else if word_at(&chars, i, "notin") {
                    i += 5;
                    "notin"
                } else if word_at(&chars, i, "in") {
                    i += 2;
                    "in"
                } else {
                    return Err(format!(
                        "unable to parse requirement: found '{}', expected: in, notin, =, ==, !=, gt, lt",
                        rest(&chars, i)
                    ));
                };
                skip_ws(&mut i);
                if op == "in" || op == "notin" {
                    if i >= chars.len() || chars[i] != '(' {
                        return Err(format!(
                            "unable to parse requirement: found '{}', expected: '('",
                            rest(&chars, i)
                        ));
                    }
                    i += 1;
                    let mut vals = Vec::new();
                    loop {
                        skip_ws(&mut i);
                        let vs = i;
                        while i < chars.len() && is_key_char(chars[i]) {
                            i += 1;
                        }
                        let v: String = chars[vs..i].iter().collect();
                        validate_value(&v)?;
                        vals.push(v);
                        skip_ws(&mut i);
                        match chars.get(i) {
                            Some(',') => i += 1,
                            Some(')') => {
                                i += 1;
                                break;
                            }
                            _ => {
                                return Err(format!(
                                    "unable to parse requirement: found '{}', expected: ',', ')'",
                                    rest(&chars, i)
                                ))
                            }
                        }
                    }
                    reqs.push((
                        key,
                        if op == "in" {
                            LabelOp::In(vals)
                        } else {
                            LabelOp::NotIn(vals)
                        },
                    ));
                } else {
                    let vs = i;
                    while i < chars.len() && is_key_char(chars[i]) {
                        i += 1;
                    }
                    let v: String = chars[vs..i].iter().collect();
                    match op {
                        ">" | "<" => {
                            let n: i64 = v.parse().map_err(|_| {
                                format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v}")
                            })?;
                            reqs.push((
                                key,
                                if op == ">" {
                                    LabelOp::Gt(n)
                                } else {
                                    LabelOp::Lt(n)
                                },
                            ));
                        }
                        _ => {
                            validate_value(&v)?;
                            let vals = vec![v];
                            reqs.push((
                                key,
                                if op == "=" {
                                    LabelOp::In(vals)
                                } else {
                                    LabelOp::NotIn(vals)
                                },
                            ));
                        }
                    }
                }
            }
            skip_ws(&mut i);
            match chars.get(i) {
                None => break,
                Some(',') => i += 1,
                Some(_) => {
                    return Err(format!(
                        "unable to parse requirement: found '{}', expected: ','",
                        rest(&chars, i)
                    ));
                }
            }
        }
        Ok(LabelSelector { reqs })
    }
}

fn rest(chars: &[char], i: usize) -> String {
    chars[i.min(chars.len())..].iter().take(20).collect()
}

fn s_at(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// `in`/`notin` must be followed by space or `(`.
fn word_at(chars: &[char], i: usize, w: &str) -> bool {
    s_at(chars, i, w)
        && chars
            .get(i + w.len())
            .is_none_or(|c| c.is_whitespace() || *c == '(')
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!("unable to parse requirement: invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    }
}

fn validate_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!("unable to parse requirement: invalid label value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    }
}

impl FieldSelector {
    /// Whether the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Parse `a=b,c!=d,e==f`, with `\` escaping `,`, `=`, `!` and `\` in values.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(s, ',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, eq) = if let Some(i) = find_unescaped(part, "!=") {
                (&part[..i], &part[i + 2..], false)
            } else if let Some(i) = find_unescaped(part, "==") {
                (&part[..i], &part[i + 2..], true)
            } else if let Some(i) = find_unescaped(part, "=") {
                (&part[..i], &part[i + 1..], true)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            terms.push((field.trim().to_string(), unescape(value.trim()), eq));
        }
        Ok(FieldSelector { terms })
    }

    /// Check the fields against what the kind supports; `None` if all are supported.
    pub fn unsupported<'a>(&'a self, supported: &[&str]) -> Option<&'a str> {
        self.terms
            .iter()
            .map(|(f, _, _)| f.as_str())
            .find(|f| !supported.contains(f))
    }

    /// Whether the object's field values satisfy every term. A field the object
    /// does not have counts as the empty string.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|(f, v, eq)| {
            let actual = get(f).unwrap_or_default();
            (actual == *v) == *eq
        })
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, api)"));
        assert!(!m("app notin (web)"));
        assert!(m("missing notin (x)"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("n>4,n<6"));
        assert!(!m("x.io/role=db"));
        assert!(m("app in (web),tier notin (back)"));
        assert!(LabelSelector::parse("app=")
            .unwrap()
            .matches(&labels(&[("app", "")])));
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("-bad=x").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
    }

    #[test]
    fn field_selectors() {
        let f = FieldSelector::parse("metadata.name=web,status.phase!=Running,spec.nodeName==")
            .unwrap();
        assert_eq!(f.terms.len(), 3);
        let get = |k: &str| match k {
            "metadata.name" => Some("web".to_string()),
            "status.phase" => Some("Pending".to_string()),
            _ => None,
        };
        assert!(f.matches(get));
        assert_eq!(
            f.unsupported(&["metadata.name", "status.phase"]),
            Some("spec.nodeName")
        );
        let e = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(e.terms[0].1, "a,b");
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
