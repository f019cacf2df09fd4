//! Rendering a [`Ruleset`] as an nft script: the whole table, or the
//! difference from what was applied before. Every script is applied with
//! one `nft -f`, so it is one transaction.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::rules::{Collection, Ruleset};

fn kind(c: &Collection) -> &'static str {
    if c.def.contains(" : ") {
        "map"
    } else {
        "set"
    }
}

impl Ruleset {
    /// The nft script that makes the table hold exactly this ruleset, in
    /// one transaction (`nft -f` applies a file atomically). Without
    /// `previous` (the first apply of this process) the table is deleted
    /// and rebuilt. With it, every chain is flushed and refilled, static
    /// sets and maps are flushed and refilled, and what `previous` had
    /// but this one lacks is deleted; affinity sets keep their entries.
    pub fn render(&self, previous: Option<&Ruleset>) -> String {
        let t = &self.table;
        let mut s = String::with_capacity(self.size() * 96 + 1024);
        s.push_str(&format!("add table ip {t}\n"));
        if previous.is_none() {
            s.push_str(&format!("delete table ip {t}\nadd table ip {t}\n"));
        } else {
            s.push_str(&format!("flush table ip {t}\n"));
        }
        for (name, c) in &self.chains {
            match &c.header {
                Some(h) => s.push_str(&format!("add chain ip {t} {name} {{ {h} }}\n")),
                None => s.push_str(&format!("add chain ip {t} {name}\n")),
            }
        }
        for (name, set) in &self.sets {
            let kind = kind(set);
            s.push_str(&format!("add {kind} ip {t} {name} {{ {} }}\n", set.def));
            if set.dynamic {
                continue;
            }
            if previous.is_some() {
                s.push_str(&format!("flush {kind} ip {t} {name}\n"));
            }
            if !set.elements.is_empty() {
                s.push_str(&format!(
                    "add element ip {t} {name} {{ {} }}\n",
                    set.elements.join(", ")
                ));
            }
        }
        for (name, c) in &self.chains {
            for r in &c.rules {
                s.push_str(&format!("add rule ip {t} {name} {r}\n"));
            }
        }
        if let Some(prev) = previous {
            // Nothing refers to these any more: their rules were flushed
            // and the maps refilled without them.
            for name in prev.chains.keys().filter(|n| !self.chains.contains_key(*n)) {
                s.push_str(&format!("delete chain ip {t} {name}\n"));
            }
            for (name, set) in prev
                .sets
                .iter()
                .filter(|(n, _)| !self.sets.contains_key(*n))
            {
                let kind = kind(set);
                s.push_str(&format!("delete {kind} ip {t} {name}\n"));
            }
        }
        s
    }

    /// The nft script that turns `previous` (what the kernel holds, as
    /// this process last applied it) into this ruleset, touching only what
    /// changed: new chains and sets are added, changed chains flushed and
    /// refilled, map and set elements deleted and added one by one, and
    /// what is gone deleted last (once nothing refers to it). Also one
    /// transaction. Empty when nothing changed.
    pub fn diff(&self, previous: &Ruleset) -> String {
        let t = &self.table;
        // One ordered walk over both sides of each map (no lookups), each
        // kind of statement in its own part, joined in the order the
        // kernel needs: declarations, rules, elements, then removals.
        let (mut new_chains, mut rules, mut flush_gone, mut delete_gone) =
            (String::new(), String::new(), String::new(), String::new());
        for (name, now, before) in side_by_side(&self.chains, &previous.chains) {
            match (now, before) {
                (Some(c), before) => {
                    match before {
                        Some(old) if old.rules == c.rules => continue,
                        Some(_) => rules.push_str(&format!("flush chain ip {t} {name}\n")),
                        None => match &c.header {
                            Some(h) => {
                                new_chains.push_str(&format!("add chain ip {t} {name} {{ {h} }}\n"))
                            }
                            None => new_chains.push_str(&format!("add chain ip {t} {name}\n")),
                        },
                    }
                    for r in &c.rules {
                        rules.push_str(&format!("add rule ip {t} {name} {r}\n"));
                    }
                }
                // Chains that go may refer to each other (svc → ep): empty
                // them all before deleting any, or the kernel says EBUSY.
                (None, _) => {
                    flush_gone.push_str(&format!("flush chain ip {t} {name}\n"));
                    delete_gone.push_str(&format!("delete chain ip {t} {name}\n"));
                }
            }
        }
        let (mut declarations, mut elements, mut delete_sets) =
            (String::new(), String::new(), String::new());
        let key = |e: &str| e.split(" : ").next().unwrap_or(e).to_string();
        for (name, now, before) in side_by_side(&self.sets, &previous.sets) {
            let Some(set) = now else {
                let old = before.expect("one side has it");
                delete_sets.push_str(&format!("delete {} ip {t} {name}\n", kind(old)));
                continue;
            };
            let add = format!("add {} ip {t} {name} {{ {} }}\n", kind(set), set.def);
            let old = match before {
                Some(old) if old.def == set.def => old.elements.as_slice(),
                Some(old) => {
                    // A changed declaration (never happens for our fixed
                    // declarations) needs a delete first.
                    declarations.push_str(&format!("delete {} ip {t} {name}\n", kind(old)));
                    declarations.push_str(&add);
                    &[]
                }
                None => {
                    declarations.push_str(&add);
                    &[]
                }
            };
            // Most sets are unchanged: compare before building the sets.
            if old == set.elements.as_slice() {
                continue;
            }
            let new: BTreeSet<&String> = set.elements.iter().collect();
            let before: BTreeSet<&String> = old.iter().collect();
            let gone: Vec<String> = before.difference(&new).map(|e| key(e)).collect();
            let added: Vec<&str> = new.difference(&before).map(|e| e.as_str()).collect();
            if !gone.is_empty() {
                elements.push_str(&format!(
                    "delete element ip {t} {name} {{ {} }}\n",
                    gone.join(", ")
                ));
            }
            if !added.is_empty() {
                elements.push_str(&format!(
                    "add element ip {t} {name} {{ {} }}\n",
                    added.join(", ")
                ));
            }
        }
        [
            new_chains,
            declarations,
            rules,
            elements,
            flush_gone,
            delete_gone,
            delete_sets,
        ]
        .concat()
    }
}

/// The keys of `now` and `before` in order, with the value each side has.
fn side_by_side<'a, V>(
    now: &'a BTreeMap<String, V>,
    before: &'a BTreeMap<String, V>,
) -> impl Iterator<Item = (&'a str, Option<&'a V>, Option<&'a V>)> {
    let (mut a, mut b) = (now.iter().peekable(), before.iter().peekable());
    std::iter::from_fn(move || {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) => x.cmp(y),
        };
        Some(match order {
            Ordering::Less => a.next().map(|(k, v)| (k.as_str(), Some(v), None))?,
            Ordering::Greater => b.next().map(|(k, v)| (k.as_str(), None, Some(v)))?,
            Ordering::Equal => {
                let (k, v) = a.next()?;
                (k.as_str(), Some(v), b.next().map(|(_, w)| w))
            }
        })
    })
}
