//! The JSONPath dialect of kubectl templates (`{.status.replicas}`), enough for
//! printer columns and selectable fields: fields (`.a`, `['a.b']`), indexes
//! and slices (`[0]`, `[-1]`, `[1:3]`), wildcards (`[*]`, `.*`), recursive
//! descent (`..name`) and filters (`[?(@.type=="Ready")]`, `[?(@.x)]`).
//! Upstream evaluates column paths with `k8s.io/client-go/util/jsonpath`;
//! this is our own evaluator of the same syntax.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Wildcard,
    Recursive(String),
    Filter(Filter),
    Union(Vec<Step>),
}

/// `[?(@.path op literal)]` or `[?(@.path)]`.
#[derive(Clone, Debug, PartialEq)]
struct Filter {
    path: Vec<Step>,
    op: Option<(String, Value)>,
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parse a path such as `.status.conditions[?(@.type=="Ready")].status`;
    /// an enclosing `{...}` is accepted.
    pub fn parse(src: &str) -> Result<JsonPath, String> {
        let s = src.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(s);
        let s = s.strip_prefix('$').unwrap_or(s);
        let mut p = Parser {
            chars: s.chars().collect(),
            pos: 0,
        };
        let steps = p.steps(false)?;
        if p.pos < p.chars.len() {
            return Err(format!("unexpected {:?} in {src:?}", p.chars[p.pos]));
        }
        Ok(JsonPath(steps))
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut cur = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in cur {
                apply(step, v, &mut next);
            }
            cur = next;
        }
        cur
    }
}

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(f) => {
            if let Some(x) = v.get(f.as_str()) {
                out.push(x);
            }
        }
        Step::Index(i) => {
            if let Some(a) = v.as_array() {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                if idx >= 0 {
                    if let Some(x) = a.get(idx as usize) {
                        out.push(x);
                    }
                }
            }
        }
        Step::Slice(start, end) => {
            if let Some(a) = v.as_array() {
                let n = a.len() as i64;
                let norm = |x: i64| if x < 0 { (n + x).max(0) } else { x.min(n) };
                let s = start.map(norm).unwrap_or(0);
                let e = end.map(norm).unwrap_or(n);
                for x in a.iter().take(e.max(0) as usize).skip(s.max(0) as usize) {
                    out.push(x);
                }
            }
        }
        Step::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(m) => out.extend(m.values()),
            _ => {}
        },
        Step::Recursive(f) => recurse(f, v, out),
        Step::Filter(f) => {
            if let Some(a) = v.as_array() {
                for item in a {
                    if f.matches(item) {
                        out.push(item);
                    }
                }
            }
        }
        Step::Union(steps) => {
            for s in steps {
                apply(s, v, out);
            }
        }
    }
}

fn recurse<'a>(f: &str, v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if f == "*" {
                out.extend(m.values());
            } else if let Some(x) = m.get(f) {
                out.push(x);
            }
            for x in m.values() {
                recurse(f, x, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                recurse(f, x, out);
            }
        }
        _ => {}
    }
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let found = JsonPath(self.path.clone()).find(item);
        match &self.op {
            None => found.first().is_some_and(|v| !v.is_null()),
            Some((op, lit)) => found.iter().any(|v| compare(v, op, lit)),
        }
    }
}

fn compare(v: &Value, op: &str, lit: &Value) -> bool {
    if let (Some(a), Some(b)) = (v.as_f64(), lit.as_f64()) {
        return match op {
            "==" => a == b,
            "!=" => a != b,
            "<" => a < b,
            ">" => a > b,
            "<=" => a <= b,
            ">=" => a >= b,
            _ => false,
        };
    }
    let (a, b) = (scalar_text(v), scalar_text(lit));
    match op {
        "==" => a == b,
        "!=" => a != b,
        "<" => a < b,
        ">" => a > b,
        "<=" => a <= b,
        ">=" => a >= b,
        _ => false,
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' && self.chars.get(self.pos + 1) == Some(&'.') {
                out.push('.');
                self.pos += 2;
                continue;
            }
            if matches!(
                c,
                '.' | '[' | ']' | ')' | '(' | ' ' | '=' | '!' | '<' | '>' | ',' | '}'
            ) {
                break;
            }
            out.push(c);
            self.pos += 1;
        }
        out
    }

    /// Steps until the end, or (inside a filter) until an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some('.') => {
                    self.pos += 1;
                    if self.eat('.') {
                        let f = if self.eat('*') {
                            "*".to_string()
                        } else {
                            self.ident()
                        };
                        if f.is_empty() {
                            return Err("expected a field name after ..".into());
                        }
                        steps.push(Step::Recursive(f));
                    } else if self.eat('*') {
                        steps.push(Step::Wildcard);
                    } else {
                        let f = self.ident();
                        if !f.is_empty() {
                            steps.push(Step::Field(f));
                        } else if self.peek().is_some() && self.peek() != Some('[') {
                            return Err(format!("unexpected {:?}", self.peek()));
                        }
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    steps.push(self.bracket()?);
                }
                Some(_) if in_filter => break,
                Some(c) if steps.is_empty() && (c.is_alphanumeric() || c == '_') => {
                    steps.push(Step::Field(self.ident()));
                }
                Some(c) => return Err(format!("unexpected {c:?}")),
            }
        }
        Ok(steps)
    }

    fn bracket(&mut self) -> Result<Step, String> {
        let step = if self.eat('?') {
            if !self.eat('(') {
                return Err("expected ( after ?".into());
            }
            let f = self.filter()?;
            if !self.eat(')') {
                return Err("expected ) to close the filter".into());
            }
            Step::Filter(f)
        } else if self.eat('*') {
            Step::Wildcard
        } else {
            let mut items = vec![self.bracket_item()?];
            while self.eat(',') {
                items.push(self.bracket_item()?);
            }
            if items.len() == 1 {
                items.pop().expect("one item")
            } else {
                Step::Union(items)
            }
        };
        if !self.eat(']') {
            return Err("expected ]".into());
        }
        Ok(step)
    }

    fn bracket_item(&mut self) -> Result<Step, String> {
        if let Some(q @ ('\'' | '"')) = self.peek() {
            self.pos += 1;
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => return Err("unterminated quoted field".into()),
                    Some(c) if c == q => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            return Ok(Step::Field(out));
        }
        let num = |p: &mut Parser| -> Result<Option<i64>, String> {
            let start = p.pos;
            if p.peek() == Some('-') {
                p.pos += 1;
            }
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            let text: String = p.chars[start..p.pos].iter().collect();
            if text.is_empty() {
                Ok(None)
            } else {
                text.parse()
                    .map(Some)
                    .map_err(|_| format!("bad index {text:?}"))
            }
        };
        let a = num(self)?;
        if self.eat(':') {
            let b = num(self)?;
            if self.eat(':') {
                num(self)?;
            }
            return Ok(Step::Slice(a, b));
        }
        match a {
            Some(i) => Ok(Step::Index(i)),
            None => {
                let f = self.ident();
                if f.is_empty() {
                    Err("expected an index or a field".into())
                } else {
                    Ok(Step::Field(f))
                }
            }
        }
    }

    fn filter(&mut self) -> Result<Filter, String> {
        self.skip_spaces();
        if !self.eat('@') {
            return Err("a filter starts with @".into());
        }
        let path = self.steps(true)?;
        self.skip_spaces();
        let op: String = ["==", "!=", "<=", ">=", "<", ">"]
            .iter()
            .find(|op| {
                let n = op.len();
                self.chars.len() >= self.pos + n
                    && self.chars[self.pos..self.pos + n]
                        .iter()
                        .collect::<String>()
                        == **op
            })
            .map(|op| op.to_string())
            .unwrap_or_default();
        if op.is_empty() {
            return Ok(Filter { path, op: None });
        }
        self.pos += op.len();
        self.skip_spaces();
        let lit = self.literal()?;
        self.skip_spaces();
        Ok(Filter {
            path,
            op: Some((op, lit)),
        })
    }

    fn literal(&mut self) -> Result<Value, String> {
        if let Some(q @ ('\'' | '"')) = self.peek() {
            self.pos += 1;
            let start = self.pos;
            while self.peek().is_some_and(|c| c != q) {
                self.pos += 1;
            }
            let text: String = self.chars[start..self.pos].iter().collect();
            if !self.eat(q) {
                return Err("unterminated string in filter".into());
            }
            return Ok(Value::String(text));
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| !matches!(c, ')' | ' ')) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        match text.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "nil" | "null" => Ok(Value::Null),
            t => serde_json::from_str::<serde_json::Number>(t)
                .map(Value::Number)
                .map_err(|_| format!("unrecognized literal {t:?}")),
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_kubectl_paths() {
        let doc = json!({
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "list": [{"n": 1}, {"n": 2}, {"n": 3}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Synced", "status": "False", "count": 4}
            ]}
        });
        let cases = vec![
            (".spec.replicas", vec![json!(3)]),
            ("{.metadata.name}", vec![json!("x")]),
            (".spec.list[1].n", vec![json!(2)]),
            (".spec.list[-1].n", vec![json!(3)]),
            (".spec.list[0:2].n", vec![json!(1), json!(2)]),
            (".spec.list[*].n", vec![json!(1), json!(2), json!(3)]),
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                vec![json!("True")],
            ),
            (
                ".status.conditions[?(@.type=='Synced')].status",
                vec![json!("False")],
            ),
            (
                ".status.conditions[?(@.count > 3)].type",
                vec![json!("Synced")],
            ),
            (".status.conditions[?(@.count)].type", vec![json!("Synced")]),
            (
                ".metadata.labels['app.kubernetes.io/name']",
                vec![json!("web")],
            ),
            (
                ".metadata.labels.app\\.kubernetes\\.io/name",
                vec![json!("web")],
            ),
            ("..n", vec![json!(1), json!(2), json!(3)]),
            (".spec.missing", vec![]),
            (".spec.list[9]", vec![]),
            (".spec.list[0,2].n", vec![json!(1), json!(3)]),
        ];
        for (p, want) in cases {
            let path = JsonPath::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            let got: Vec<Value> = path.find(&doc).into_iter().cloned().collect();
            assert_eq!(got, want, "{p}");
        }
    }

    #[test]
    fn refuses_broken_paths() {
        for p in [".a[", ".a[?(x)]", ".a['b", ".a[?(@.b==)]"] {
            assert!(JsonPath::parse(p).is_err(), "{p}");
        }
    }
}
