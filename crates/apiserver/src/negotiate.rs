//! Which form of a response the client asked for in `Accept`: the object
//! itself, a `Table` (kubectl's printing), or only its metadata as a
//! `PartialObjectMetadata` or `PartialObjectMetadataList` (client-go's
//! metadata client and metadata-only informers).
//!
//! As upstream's negotiation does, the first clause the server can serve
//! wins: `application/vnd.kubernetes.protobuf;as=…` is skipped (responses are
//! JSON), and so is an `as=` kind other than the three meta.k8s.io views.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::resources::ResourceInfo;

/// The form of the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The object (or list) itself.
    Object,
    /// A `meta.k8s.io` Table.
    Table,
    /// `PartialObjectMetadata` of the given meta.k8s.io version.
    Partial(&'static str),
    /// `PartialObjectMetadataList` of the given meta.k8s.io version.
    PartialList(&'static str),
}

/// The output the `Accept` header asks for.
pub fn output(accept: &str) -> Output {
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !matches!(
            media,
            "application/json" | "application/yaml" | "application/*" | "*/*" | ""
        ) {
            continue;
        }
        let (mut as_kind, mut group, mut version) = (None, None, None);
        for p in parts {
            match p.split_once('=') {
                Some(("as", v)) => as_kind = Some(v),
                Some(("g", v)) => group = Some(v),
                Some(("v", v)) => version = Some(v),
                _ => {}
            }
        }
        let Some(kind) = as_kind else {
            return Output::Object;
        };
        let version = match version {
            Some("v1") => "v1",
            Some("v1beta1") => "v1beta1",
            _ => continue,
        };
        if group != Some("meta.k8s.io") {
            continue;
        }
        match kind {
            "Table" => return Output::Table,
            "PartialObjectMetadata" => return Output::Partial(version),
            "PartialObjectMetadataList" => return Output::PartialList(version),
            _ => continue,
        }
    }
    Output::Object
}

/// The Go type upstream names in its 406 messages, e.g. `*v1.Pod`.
fn go_type(info: &ResourceInfo, list: bool) -> String {
    if crate::crd::is_custom(info) {
        let t = if list {
            "UnstructuredList"
        } else {
            "Unstructured"
        };
        return format!("*unstructured.{t}");
    }
    let version = info.api_version();
    let version = version.rsplit('/').next().unwrap_or("v1");
    let list = if list { "List" } else { "" };
    format!("*{version}.{}{list}", info.kind)
}

/// A single object's metadata view, or 406 when a list view was asked for.
pub fn partial(out: Output, info: &ResourceInfo, object: &Value) -> Result<Value, ApiError> {
    match out {
        Output::Partial(v) => Ok(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": format!("meta.k8s.io/{v}"),
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
        _ => Err(ApiError::not_acceptable(format!(
            "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
            go_type(info, false)
        ))),
    }
}

/// A list's metadata view, or 406 when a single-object view was asked for.
pub fn partial_list(
    out: Output,
    info: &ResourceInfo,
    items: impl Iterator<Item = Value>,
    list_meta: Value,
) -> Result<Value, ApiError> {
    match out {
        Output::PartialList(v) => {
            let api_version = format!("meta.k8s.io/{v}");
            let items: Vec<Value> = items
                .map(|o| {
                    json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": api_version,
                        "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    })
                })
                .collect();
            Ok(json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": api_version,
                "metadata": list_meta,
                "items": items,
            }))
        }
        _ => Err(ApiError::not_acceptable(format!(
            "you requested PartialObjectMetadata, but the requested object is a list ({})",
            go_type(info, true)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_clause_the_server_can_serve_wins() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output(kubectl), Output::Table);
        let metadata_get = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(output(metadata_get), Output::Partial("v1"));
        assert_eq!(
            output("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1"),
            Output::PartialList("v1beta1")
        );
        assert_eq!(output("application/json"), Output::Object);
        assert_eq!(output(""), Output::Object);
        // Unknown views, groups and versions fall through to the next clause.
        assert_eq!(
            output("application/json;as=Other;g=meta.k8s.io;v=v1,application/json;as=Table;g=meta.k8s.io;v=v1"),
            Output::Table
        );
        assert_eq!(
            output("application/json;as=Table;g=example.com;v=v1,application/json"),
            Output::Object
        );
        assert_eq!(
            output("application/json;as=Table;g=meta.k8s.io;v=v2"),
            Output::Object
        );
    }

    #[test]
    fn views_keep_the_whole_metadata_and_refuse_the_wrong_shape() {
        let pods = crate::resources::lookup_builtin("", "v1", "pods").unwrap();
        let pod = json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "a", "namespace": "d", "labels": {"x": "y"}}, "spec": {}});
        let p = partial(Output::Partial("v1"), pods, &pod).unwrap();
        assert_eq!(p["kind"], "PartialObjectMetadata");
        assert_eq!(p["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(p["metadata"], pod["metadata"]);
        assert!(p.get("spec").is_none());
        let e = partial(Output::PartialList("v1"), pods, &pod).unwrap_err();
        assert_eq!(e.code, 406);
        assert!(
            e.message.ends_with("is not a list (*v1.Pod)"),
            "{}",
            e.message
        );

        let l = partial_list(
            Output::PartialList("v1"),
            pods,
            [pod.clone()].into_iter(),
            json!({"resourceVersion": "7"}),
        )
        .unwrap();
        assert_eq!(l["kind"], "PartialObjectMetadataList");
        assert_eq!(l["metadata"]["resourceVersion"], "7");
        assert_eq!(l["items"][0]["metadata"]["name"], "a");
        let e =
            partial_list(Output::Partial("v1"), pods, std::iter::empty(), json!({})).unwrap_err();
        assert!(
            e.message.ends_with("is a list (*v1.PodList)"),
            "{}",
            e.message
        );
    }
}
