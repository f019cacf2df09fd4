//! YAML request bodies, decoded with limits so that alias bombs
//! (CVE-2019-11253) and deep nesting are refused instead of expanded.

use serde_json::Value;

/// Most nodes a decoded document may have; a 3 MiB body of plain YAML stays
/// far below this, while an alias bomb blows past it.
const MAX_NODES: usize = 2_000_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 100;
/// Most aliases a document may use.
const MAX_ALIASES: usize = 1_000;

/// Decode one YAML document into JSON.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("error decoding YAML: {e}"))?;
    // Count aliases cheaply before the parser gets a chance to expand them.
    let aliases = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| {
            l.matches(" *").count()
                + l.matches("[*").count()
                + l.matches(",*").count()
                + usize::from(l.trim_start().starts_with('*'))
        })
        .sum::<usize>();
    if aliases > MAX_ALIASES {
        return Err(format!(
            "error decoding YAML: too many aliases ({aliases} > {MAX_ALIASES})"
        ));
    }
    let v: Value =
        serde_norway::from_str(text).map_err(|e| format!("error converting YAML to JSON: {e}"))?;
    let (mut nodes, depth) = (0usize, measure(&v, 0, &mut 0));
    count(&v, &mut nodes);
    if depth > MAX_DEPTH {
        return Err(format!(
            "error decoding YAML: nesting deeper than {MAX_DEPTH}"
        ));
    }
    if nodes > MAX_NODES {
        return Err(format!(
            "error decoding YAML: document too large ({nodes} nodes)"
        ));
    }
    Ok(v)
}

fn measure(v: &Value, d: usize, max: &mut usize) -> usize {
    *max = (*max).max(d);
    match v {
        Value::Array(a) => a.iter().for_each(|x| {
            measure(x, d + 1, max);
        }),
        Value::Object(m) => m.values().for_each(|x| {
            measure(x, d + 1, max);
        }),
        _ => {}
    }
    *max
}

fn count(v: &Value, n: &mut usize) {
    *n += 1;
    match v {
        Value::Array(a) => a.iter().for_each(|x| count(x, n)),
        Value::Object(m) => m.values().for_each(|x| count(x, n)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_documents() {
        let v = decode(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: '1'\n")
            .unwrap();
        assert_eq!(v["metadata"]["name"], "x");
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            let refs = vec![format!("*{prev}"); 9].join(",");
            doc.push_str(&format!("{n}: &{n} [{refs}]\n"));
            prev = n;
        }
        let started = std::time::Instant::now();
        assert!(decode(doc.as_bytes()).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "a: ".to_string() + &"[".repeat(500) + &"]".repeat(500);
        assert!(decode(doc.as_bytes()).is_err());
    }
}
