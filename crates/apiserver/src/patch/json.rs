//! RFC 6902 JSON patches (`application/json-patch+json`), applied with
//! upstream's limit on what `copy` operations may add (CVE-2019-1002100):
//! without it, a few dozen copies of a value into itself double the object
//! each time, and a small request takes the server's memory.

use std::io;

use json_patch::PatchOperation;
use serde_json::Value;

/// Most operations a JSON patch may carry (upstream's
/// `maxJSONPatchOperations`).
pub const MAX_OPERATIONS: usize = 10_000;

/// The 413 upstream answers a patch of more than [`MAX_OPERATIONS`] with,
/// checked before anything is read or locked.
pub fn check_operations(n: usize) -> Result<(), crate::error::ApiError> {
    if n > MAX_OPERATIONS {
        return Err(crate::error::ApiError::too_large(format!(
            "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {n}"
        )));
    }
    Ok(())
}

/// Most bytes a patch's `copy` operations may add, all together:
/// upstream's `JSONPatchMaxCopyBytes` (3 MiB, its largest request body).
pub const MAX_COPY_BYTES: u64 = 3 << 20;

/// Why a JSON patch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum JsonPatchError {
    /// The copies added more than [`MAX_COPY_BYTES`] (upstream's wording).
    #[error(
        "Unable to complete the copy, the accumulated size increase of copy is {accumulated}, exceeding the limit {MAX_COPY_BYTES}"
    )]
    CopyLimit { accumulated: u64 },
    /// An operation failed: a missing path, a failed `test`, ...
    #[error(transparent)]
    Operation(#[from] json_patch::PatchError),
}

/// What the client is told of a patch that failed: upstream's generic 422,
/// without the cause (which goes to the log).
impl From<JsonPatchError> for crate::error::ApiError {
    fn from(e: JsonPatchError) -> Self {
        tracing::debug!(error = %e, "JSON patch not applied");
        crate::error::ApiError::rejected()
    }
}

/// Apply `ops` to `doc` in order. Each copied value counts as the length of
/// its JSON encoding, as upstream counts it; a copy that would take the sum
/// past [`MAX_COPY_BYTES`] is refused before it is made, and counting stops
/// at the limit, so a refused patch costs at most the limit's worth of
/// encoding. On error `doc` is left part-patched: callers patch a copy.
pub fn apply(doc: &mut Value, ops: &[PatchOperation]) -> Result<(), JsonPatchError> {
    let mut accumulated = 0;
    for (i, op) in ops.iter().enumerate() {
        if let PatchOperation::Copy(copy) = op {
            // A missing source fails in the operation itself, below.
            if let Some(from) = doc.pointer(copy.from.as_str()) {
                // The full length is worked out only for the refusal's message.
                accumulated =
                    encoded_len_up_to(from, accumulated, MAX_COPY_BYTES).ok_or_else(|| {
                        JsonPatchError::CopyLimit {
                            accumulated: accumulated + encoded_len(from),
                        }
                    })?;
            }
        }
        json_patch::patch_unsafe(doc, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = i;
            e
        })?;
    }
    Ok(())
}

/// `start` plus the length of `v`'s JSON encoding, or None past `limit`
/// (the encoding stops there).
fn encoded_len_up_to(v: &Value, start: u64, limit: u64) -> Option<u64> {
    struct Count {
        n: u64,
        limit: u64,
    }
    impl io::Write for Count {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.n += b.len() as u64;
            if self.n > self.limit {
                return Err(io::Error::other("over the limit"));
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count { n: start, limit };
    serde_json::to_writer(&mut c, v).ok().map(|()| c.n)
}

/// The length of `v`'s JSON encoding (for the error message only).
fn encoded_len(v: &Value) -> u64 {
    encoded_len_up_to(v, 0, u64::MAX).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<PatchOperation> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn more_than_ten_thousand_operations_are_too_large() {
        assert!(check_operations(MAX_OPERATIONS).is_ok());
        let e = check_operations(MAX_OPERATIONS + 1).unwrap_err();
        assert_eq!((e.code, e.reason), (413, "RequestEntityTooLarge"));
        assert_eq!(
            e.message,
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn copies_count_the_encoding_of_what_they_copy() {
        // Upstream's own case: a 51-byte string (its quotes included),
        // copied twice against a limit of 100, fails at the second.
        let a = "A".repeat(49);
        assert_eq!(encoded_len(&json!(a)), 51);
        assert_eq!(encoded_len_up_to(&json!(a), 50, 100), None);
        assert_eq!(encoded_len_up_to(&json!(a), 49, 100), Some(100));
        assert_eq!(encoded_len(&json!({"a": [1, "x"]})), 13);
    }

    #[test]
    fn a_doubling_patch_is_refused_before_it_grows() {
        // Each copy doubles /d: 13 of them would make it 8 MB (few enough
        // that a patch without the limit completes, and this test fails).
        let mut doc = json!({"d": {"x": "y".repeat(1000)}});
        let mut p = Vec::new();
        for i in 0..13 {
            p.push(json!({"op": "copy", "from": "/d", "path": format!("/d/c{i}")}));
        }
        let started = std::time::Instant::now();
        let err = apply(&mut doc, &ops(json!(p))).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let JsonPatchError::CopyLimit { accumulated } = err else {
            panic!("{err}");
        };
        assert!(accumulated > MAX_COPY_BYTES, "{accumulated}");
        assert!(err
            .to_string()
            .starts_with("Unable to complete the copy, the accumulated size increase of copy is "));
        assert!(err.to_string().ends_with("exceeding the limit 3145728"));
        // What was applied stayed under the limit.
        assert!(encoded_len(&doc) < 2 * MAX_COPY_BYTES);
    }

    #[test]
    fn copies_under_the_limit_and_other_operations_apply_in_order() {
        let mut doc = json!({"a": {"b": 1}, "l": [1, 2]});
        let p = ops(json!([
            {"op": "copy", "from": "/a", "path": "/c"},
            {"op": "add", "path": "/c/d", "value": 2},
            {"op": "move", "from": "/l/0", "path": "/l/-"},
            {"op": "test", "path": "/a", "value": {"b": 1}},
            {"op": "remove", "path": "/a/b"},
        ]));
        apply(&mut doc, &p).unwrap();
        assert_eq!(doc, json!({"a": {}, "c": {"b": 1, "d": 2}, "l": [2, 1]}));
    }

    #[test]
    fn a_failed_operation_is_named_by_its_index_in_the_whole_patch() {
        let mut doc = json!({"a": 1});
        let p = ops(json!([
            {"op": "add", "path": "/b", "value": 2},
            {"op": "copy", "from": "/a", "path": "/c"},
            {"op": "test", "path": "/a", "value": 2},
        ]));
        let err = apply(&mut doc, &p).unwrap_err();
        assert!(
            matches!(err, JsonPatchError::Operation(ref e) if e.operation == 2),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("operation '/2' failed at path '/a'"),
            "{err}"
        );
    }
}
