//! The order of a merged list.
//!
//! Upstream splits the merged items into those the patch names and those
//! only the server has, sorts the first by the patch's order (or the
//! `$setElementOrder/` list) and the second by the live order, then
//! interleaves them: a server-only item goes before a patch item only when
//! both were in the live list and it came first there. So new items come
//! before the server-only items that follow them, and kubectl's
//! `$setElementOrder/` reproduces the manifest's order.

use serde_json::Value;

use super::directives::{bad_arg_type, is_delete_item, no_merge_key, MAP_TYPE};
use crate::patch::PatchError;

/// What identifies an item: its merge-key value for maps, itself otherwise.
#[derive(Clone, Copy)]
pub struct Identity<'k> {
    /// The merge key; empty for lists of scalars.
    pub merge_key: &'k str,
    /// Whether the items are maps.
    pub maps: bool,
}

impl Identity<'_> {
    fn id<'v>(&self, item: &'v Value) -> Option<&'v Value> {
        if self.maps {
            item.get(self.merge_key)
        } else {
            Some(item)
        }
    }

    /// The identities of `list`'s items, in order, to find items in it
    /// with [`Identity::index`] (each item's merge key looked up once, not
    /// once per search).
    fn ids<'v>(&self, list: &'v [Value]) -> Vec<Option<&'v Value>> {
        list.iter().map(|v| self.id(v)).collect()
    }

    /// Where `item` is in the list of `ids`, as upstream's `index`: maps
    /// match on the merge-key value (a missing key matching a missing key).
    fn index(&self, ids: &[Option<&Value>], item: &Value) -> Option<usize> {
        let want = self.id(item);
        ids.iter().position(|id| *id == want)
    }
}

/// Each item is a map with the merge key, or the error upstream gives.
fn check_merge_keys(merge_key: &str, lists: &[&[Value]]) -> Result<(), PatchError> {
    for list in lists {
        for item in list.iter() {
            let Value::Object(m) = item else {
                return Err(bad_arg_type(MAP_TYPE, Some(item)));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
        }
    }
    Ok(())
}

/// Sort `items` by their position in `order`; items marked `$patch: delete`
/// go last.
fn sort_by(
    mut items: Vec<Value>,
    order: &[Value],
    ident: Identity<'_>,
) -> Result<Vec<Value>, PatchError> {
    let mut deletes = Vec::new();
    if ident.maps {
        check_merge_keys(ident.merge_key, &[&items, order])?;
        let (keep, del): (Vec<Value>, Vec<Value>) =
            items.into_iter().partition(|v| !is_delete_item(v));
        items = keep;
        deletes = del;
    }
    // Every item is found in `order` when called from the merge (the items
    // were partitioned by it); an item that is not keeps its relative place
    // at the end.
    let ids = ident.ids(order);
    let mut keyed: Vec<(usize, Value)> = items
        .into_iter()
        .map(|v| (ident.index(&ids, &v).unwrap_or(usize::MAX), v))
        .collect();
    keyed.sort_by_key(|(i, _)| *i);
    let mut out: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    out.extend(deletes);
    Ok(out)
}

/// Interleave `server_only` into `patch_items`, keeping each side's order: a
/// server-only item is taken first only if both it and the next patch item
/// are in `server_order` and it comes first there.
fn interleave(
    server_only: Vec<Value>,
    patch_items: Vec<Value>,
    server_order: &[Value],
    ident: Identity<'_>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + patch_items.len());
    let ids = ident.ids(server_order);
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (ident.index(&ids, l), ident.index(&ids, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Order merged items: `patch_items` by `patch_order`, `server_only` by
/// `server_order`, then interleaved.
pub fn normalize(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    ident: Identity<'_>,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by(patch_items, patch_order, ident)?;
    let server_only = sort_by(server_only, server_order, ident)?;
    Ok(interleave(server_only, patch_items, server_order, ident))
}

/// Split `merged` into the items `by` names and the others.
pub fn partition(
    merged: Vec<Value>,
    by: &[Value],
    ident: Identity<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut named = Vec::new();
    let mut others = Vec::new();
    for item in merged {
        let found = if ident.maps {
            let Value::Object(m) = &item else {
                return Err(bad_arg_type(MAP_TYPE, Some(&item)));
            };
            let Some(key) = m.get(ident.merge_key) else {
                return Err(no_merge_key(m, ident.merge_key));
            };
            super::lists::find_by_key(by, ident.merge_key, key)?.is_some()
        } else {
            by.contains(&item)
        };
        if found {
            named.push(item);
        } else {
            others.push(item);
        }
    }
    Ok((named, others))
}
