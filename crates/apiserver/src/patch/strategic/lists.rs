//! Merging a list from a patch into a live list.
//!
//! A list whose field has the `merge` strategy is merged: items of maps by
//! their merge key (recursively), scalars as a set. `$patch: delete` items
//! remove the live item with their key, a `$patch: replace` item makes the
//! rest of the patch list the new list, and a `$deleteFromPrimitiveList/`
//! list removes scalars. Any other list is replaced by the patch's.

use serde_json::{Map, Value};

use super::directives::{no_merge_key, unknown_patch_type, PATCH};
use super::merge_map;
use super::order::{self, Identity};
use crate::patch::gofmt::{self, GoKind};
use crate::patch::meta::Schema;
use crate::patch::PatchError;

/// The item of `list` whose `key` equals `value`, by index. Every item must
/// be a map.
pub fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(PatchError::Internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The kind all items of `lists` share, or upstream's error: items of
/// different types, lists of lists, or no items at all.
pub fn element_kind(lists: &[&[Value]]) -> Result<GoKind, PatchError> {
    let mut kind = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let k = GoKind::of(item);
        match kind {
            None if k == GoKind::Slice => return Err(PatchError::ListOfLists),
            // Upstream cannot even classify a leading null (it crashes the
            // request, which its server turns into a 500).
            None if k == GoKind::Nil => {
                return Err(PatchError::Internal(
                    "list elements of type <nil> cannot be merged".into(),
                ))
            }
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let shown: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::Internal(format!(
                    "list element types are not identical: {}",
                    gofmt::v(&Value::Array(shown))
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| PatchError::Internal("no elements in any of the given slices".into()))
}

/// How a list field is merged: its strategy and merge key, and whether the
/// patch list is a `$deleteFromPrimitiveList/`.
#[derive(Clone, Copy)]
pub struct How<'a> {
    pub strategy: &'a str,
    pub merge_key: &'a str,
    pub delete_list: bool,
}

/// Merge a list field per its strategy: `merge` (or a deletion list) merges,
/// anything else takes the patch's list as it is.
///
/// With `live_view`, also reports the live list as upstream's code sees it
/// after merging: its merge edits the live list's backing array in place, so
/// removed items shift left and new items fill the freed slots, and the
/// `$setElementOrder/` step then orders server-only items against that
/// view. The live slice's capacity is its length there (the API server works
/// on deep copies), which this reproduces.
pub fn merge_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema<'_>,
    how: How<'_>,
    live_view: Option<&mut Vec<Value>>,
) -> Result<Vec<Value>, PatchError> {
    if how.strategy == "merge" || how.delete_list {
        merge(
            original,
            patch,
            schema,
            how.merge_key,
            how.delete_list,
            live_view,
        )
    } else {
        Ok(patch)
    }
}

/// Merge `patch` into `original` (upstream's `mergeSlice`).
fn merge(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema<'_>,
    merge_key: &str,
    delete_list: bool,
    live_view: Option<&mut Vec<Value>>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    if kind != GoKind::Map {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        let merged = dedup(both);
        // Upstream partitions by whether a merge key is declared, but orders
        // by what the items are.
        let by_key = Identity {
            merge_key,
            maps: !merge_key.is_empty(),
        };
        let (named, others) = order::partition(merged, &patch, by_key)?;
        let ident = Identity {
            merge_key,
            maps: false,
        };
        return order::normalize(named, others, &patch, &original, ident);
    }
    if merge_key.is_empty() {
        // Upstream names the Go kind of the items' type here.
        return Err(PatchError::Internal(
            "cannot merge lists without merge key for struct".into(),
        ));
    }
    // Only the view needs the live list as upstream's in-place edits leave it.
    let mut backing = match live_view {
        Some(_) => original.clone(),
        None => Vec::new(),
    };
    let (original, patch, replaced) = special_elements(original, patch, merge_key, &mut backing)?;
    // The ordering looks at the merge keys only.
    let server_order: Vec<Value> = original.iter().map(|v| key_only(v, merge_key)).collect();
    let survivors = original.len();
    let merged = merge_items(original, &patch, merge_key, schema)?;
    if let Some(view) = live_view {
        // New items were appended into the slots deletions freed, until the
        // slice outgrew them; a replaced list no longer shares them.
        if !replaced {
            let free = backing.len() - survivors;
            for (slot, item) in backing[survivors..]
                .iter_mut()
                .zip(&merged[survivors..])
                .take(free)
            {
                *slot = item.clone();
            }
        }
        *view = backing;
    }
    let ident = Identity {
        merge_key,
        maps: true,
    };
    let (named, others) = order::partition(merged, &patch, ident)?;
    order::normalize(named, others, &patch, &server_order, ident)
}

/// Act on the patch items with a `$patch` directive: `delete` removes the
/// live items with the same key, `replace` makes the other patch items the
/// whole list. Returns the live list, the patch items left to merge, and
/// whether the list was replaced. `backing` follows upstream's in-place
/// removals (see [`merge_field`]).
fn special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
    backing: &mut [Value],
) -> Result<(Vec<Value>, Vec<Value>, bool), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = &item else {
            // element_kind made every item a map.
            plain.push(item);
            continue;
        };
        let Some(directive) = m.get(PATCH) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(key) = m.get(merge_key) else {
                    return Err(no_merge_key(m, merge_key));
                };
                while let Some(i) = find_by_key(&original, merge_key, key)? {
                    // Upstream shifts the tail left, leaving the last slot
                    // (followed only where a view is wanted).
                    if !backing.is_empty() {
                        for j in i..original.len() - 1 {
                            backing[j] = backing[j + 1].clone();
                        }
                    }
                    original.remove(i);
                }
            }
            // The remaining directive items are still checked.
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::Internal(
                    "merging lists cannot yet be specified in the patch".into(),
                ))
            }
            _ => return Err(unknown_patch_type(directive, m)),
        }
    }
    if replace {
        return Ok((plain, Vec::new(), true));
    }
    Ok((original, plain, false))
}

/// A map item as the ordering sees it: its merge key alone (other items,
/// and maps without the key, whole, for the errors that name them).
fn key_only(item: &Value, merge_key: &str) -> Value {
    match item.get(merge_key) {
        Some(k) => {
            let mut m = Map::new();
            m.insert(merge_key.to_string(), k.clone());
            Value::Object(m)
        }
        None => item.clone(),
    }
}

/// Merge each patch item into the live item with its key, or append it.
fn merge_items(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Schema<'_>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Value::Object(p) = item else {
            continue;
        };
        let Some(key) = p.get(merge_key) else {
            return Err(no_merge_key(p, merge_key));
        };
        match find_by_key(&original, merge_key, key)? {
            Some(i) => {
                let live = match std::mem::take(&mut original[i]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                original[i] = Value::Object(merge_map(live, p.clone(), schema)?);
            }
            // Appended as sent, directives and nulls included, as upstream.
            None => original.push(item.clone()),
        }
    }
    Ok(original)
}

/// Remove duplicates the way upstream does: a duplicate is overwritten by
/// the last item, so the order changes (it is normalized afterwards).
fn dedup(mut s: Vec<Value>) -> Vec<Value> {
    if s.is_empty() {
        return s;
    }
    let mut length = s.len() - 1;
    let mut i = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if s[i] == s[j] {
                s.swap(j, length);
                s.truncate(length);
                length -= 1;
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dedup_moves_the_last_item_into_a_duplicate() {
        let got = dedup(vec![json!("a"), json!("b"), json!("a"), json!("c")]);
        assert_eq!(got, vec![json!("a"), json!("b"), json!("c")]);
        let got = dedup(vec![json!(1), json!(1), json!(2), json!(3)]);
        assert_eq!(got, vec![json!(1), json!(3), json!(2)]);
    }

    #[test]
    fn element_kinds_must_agree() {
        assert_eq!(
            element_kind(&[&[json!("a")], &[json!(1)]]),
            Err(PatchError::Internal(
                "list element types are not identical: [[a] [1]]".into()
            ))
        );
        assert_eq!(
            element_kind(&[&[json!(["a"])], &[]]),
            Err(PatchError::ListOfLists)
        );
        assert_eq!(
            element_kind(&[&[json!({})], &[json!({"a": 1})]]),
            Ok(GoKind::Map)
        );
    }
}
