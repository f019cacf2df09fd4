use super::*;
use crate::resources::RESOURCES;

fn doc(path: &str) -> Value {
    let d = Registry::global().v3(path).expect(path);
    serde_json::from_slice(&d.body).unwrap()
}

fn refs_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                // A string `$ref` is a reference; JSONSchemaProps also has a
                // property named `$ref`, whose schema is an object.
                if let (true, Some(r)) = (k == "$ref", x.as_str()) {
                    out.push(r.to_string());
                } else {
                    refs_in(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs_in(x, out)),
        _ => {}
    }
}

/// `nullable` and `allOf` used as schema keywords, not as property names.
fn v3_keywords(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "properties" || k == "definitions" {
                    x.as_object()
                        .into_iter()
                        .flat_map(|p| p.values())
                        .for_each(|s| v3_keywords(s, out));
                } else {
                    if k == "nullable" || k == "allOf" {
                        out.push(k.clone());
                    }
                    v3_keywords(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| v3_keywords(x, out)),
        _ => {}
    }
}

fn has_gvk(def: &Value, g: &str, v: &str, k: &str) -> bool {
    def["x-kubernetes-group-version-kind"]
        .as_array()
        .is_some_and(|l| {
            l.iter()
                .any(|x| x["group"] == g && x["version"] == v && x["kind"] == k)
        })
}

#[test]
fn every_served_kind_and_its_list_is_in_its_document() {
    for r in RESOURCES {
        let d = doc(&gv_path(r.group, r.version));
        let schemas = d["components"]["schemas"].as_object().unwrap();
        let find = |kind: &str| {
            schemas
                .values()
                .find(|s| has_gvk(s, r.group, r.version, kind))
        };
        let kind = find(r.kind).unwrap_or_else(|| panic!("{} missing", r.kind));
        assert!(kind["properties"]["metadata"].is_object(), "{}", r.kind);
        if r.verbs.contains(&"list") {
            let list = find(&format!("{}List", r.kind)).expect("list kind");
            assert_eq!(list["required"], json!(["items"]));
            assert!(list["properties"]["items"]["items"]["$ref"].is_string());
        }
        // Each kind is named by the GVK of an operation on its paths, which
        // is how kubectl explain finds the schema.
        let prefix = ops::gv_prefix(r.group, r.version);
        let op_gvk = d["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix) && p.contains(&format!("/{}", r.plural)))
            .flat_map(|(_, item)| item.as_object().unwrap().values())
            .any(|op| op["x-kubernetes-group-version-kind"]["kind"] == r.kind);
        assert!(op_gvk, "no operation names {}", r.kind);
    }
}

#[test]
fn references_resolve_within_each_document() {
    let index: Value = serde_json::from_slice(&Registry::global().index()).unwrap();
    let paths = index["paths"].as_object().unwrap();
    assert!(paths.contains_key("api/v1") && paths.contains_key("apis/apps/v1"));
    for path in paths.keys() {
        let d = doc(path);
        let schemas = d["components"]["schemas"].as_object().unwrap();
        let mut refs = Vec::new();
        refs_in(&d, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{path}: {r}"));
            assert!(schemas.contains_key(name), "{path}: {name} unresolved");
        }
        // Only what is reachable: no CRD schema types outside their group.
        if !path.starts_with("apis/apiextensions.k8s.io/") {
            assert!(
                !schemas.keys().any(|k| k.contains("JSONSchemaProps")),
                "{path}"
            );
        }
    }
}

#[test]
fn patch_metadata_and_descriptions_reach_the_documents() {
    let d = doc("api/v1");
    let s = &d["components"]["schemas"];
    let containers = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    // A reference with a description is wrapped in allOf, as upstream.
    let spec = &s["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(
        spec["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    assert!(spec["description"].as_str().unwrap().contains("pod"));
    // k8s-openapi's required metadata is not upstream's.
    assert!(s["io.k8s.api.core.v1.Pod"].get("required").is_none());
    assert!(has_gvk(
        &s["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"],
        "",
        "v1",
        "DeleteOptions"
    ));
}

#[test]
fn operations_carry_bodies_responses_and_extensions() {
    let d = doc("apis/apps/v1");
    let item = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fieldValidation") && names.contains(&"force"));
    assert_eq!(
        patch["requestBody"]["content"]["application/strategic-merge-patch+json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    assert_eq!(
        patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    assert_eq!(patch["responses"]["401"]["description"], "Unauthorized");
    // Path-level parameters.
    let params: Vec<&str> = item["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["name", "namespace", "pretty"]);
    // Scale speaks autoscaling/v1.
    let scale = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"];
    assert_eq!(
        scale["x-kubernetes-group-version-kind"]["group"],
        "autoscaling"
    );
    assert!(d["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    // Create answers 200, 201 and 202; list is watchable.
    let coll = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
    for code in ["200", "201", "202"] {
        assert!(coll["post"]["responses"][code].is_object());
    }
    assert_eq!(
        coll["get"]["responses"]["200"]["content"]["application/json;stream=watch"]["schema"]
            ["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentList"
    );
    // Delete of an object that is not returned answers a Status.
    assert_eq!(
        item["delete"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status"
    );
    let pods = doc("api/v1");
    let pod_delete = &pods["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"];
    assert_eq!(
        pod_delete["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Pod"
    );
}

fn v2_doc() -> Value {
    serde_json::from_slice(&Registry::global().v2().json.body).unwrap()
}

#[test]
fn v2_rewrites_references_and_covers_every_kind() {
    let d = v2_doc();
    assert_eq!(d["swagger"], "2.0");
    let defs = d["definitions"].as_object().unwrap();
    let mut refs = Vec::new();
    refs_in(&d, &mut refs);
    for r in refs {
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("not rewritten: {r}"));
        assert!(defs.contains_key(name), "{name} unresolved");
    }
    // No OpenAPI 3 keywords (property names such as JSONSchemaProps's
    // `allOf` and `nullable` are fine).
    let mut keywords = Vec::new();
    v3_keywords(&d, &mut keywords);
    assert!(keywords.is_empty(), "{keywords:?}");
    for r in RESOURCES {
        assert!(
            defs.values()
                .any(|s| has_gvk(s, r.group, r.version, r.kind)),
            "{} missing",
            r.kind
        );
    }
    // The description stays next to the reference.
    let spec = &defs["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(spec["$ref"], "#/definitions/io.k8s.api.core.v1.PodSpec");
    assert!(spec["description"].is_string());
    assert_eq!(
        defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
            ["x-kubernetes-patch-merge-key"],
        "name"
    );
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    // Bodies are parameters in v2.
    let post = &d["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"];
    assert_eq!(post["parameters"][0]["in"], "body");
    assert_eq!(
        post["parameters"][0]["schema"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.ConfigMap"
    );
}

/// The subset of gnostic's `openapi.v2` messages the test reads back.
mod gnostic {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Document {
        #[prost(string, tag = "1")]
        pub swagger: String,
        #[prost(message, optional, tag = "8")]
        pub paths: Option<Paths>,
        #[prost(message, optional, tag = "9")]
        pub definitions: Option<Definitions>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Paths {
        #[prost(message, repeated, tag = "2")]
        pub path: Vec<NamedPathItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedPathItem {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<PathItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PathItem {
        #[prost(message, optional, tag = "2")]
        pub get: Option<Operation>,
        #[prost(message, optional, tag = "8")]
        pub patch: Option<Operation>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Operation {
        #[prost(string, tag = "5")]
        pub operation_id: String,
        #[prost(message, repeated, tag = "13")]
        pub vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Definitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSchema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedSchema {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Schema {
        #[prost(string, tag = "1")]
        pub r#ref: String,
        #[prost(string, tag = "4")]
        pub description: String,
        #[prost(string, repeated, tag = "19")]
        pub required: Vec<String>,
        #[prost(message, optional, tag = "22")]
        pub r#type: Option<TypeItem>,
        #[prost(message, optional, tag = "23")]
        pub items: Option<ItemsItem>,
        #[prost(message, optional, tag = "25")]
        pub properties: Option<Definitions>,
        #[prost(message, repeated, tag = "31")]
        pub vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        pub value: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ItemsItem {
        #[prost(message, repeated, tag = "1")]
        pub schema: Vec<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedAny {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "2")]
        pub yaml: String,
    }
}

#[test]
fn v2_protobuf_decodes_as_gnostic_document() {
    use prost::Message;
    let v2 = Registry::global().v2();
    let d = gnostic::Document::decode(v2.proto.as_ref()).unwrap();
    assert_eq!(d.swagger, "2.0");
    let defs = d.definitions.unwrap().additional_properties;
    let pod_spec = defs
        .iter()
        .find(|s| s.name == "io.k8s.api.core.v1.PodSpec")
        .and_then(|s| s.value.clone())
        .unwrap();
    assert_eq!(pod_spec.r#type.unwrap().value, ["object"]);
    assert_eq!(pod_spec.required, ["containers"]);
    let containers = pod_spec
        .properties
        .unwrap()
        .additional_properties
        .into_iter()
        .find(|p| p.name == "containers")
        .and_then(|p| p.value)
        .unwrap();
    let item = &containers.items.unwrap().schema[0];
    assert_eq!(item.r#ref, "#/definitions/io.k8s.api.core.v1.Container");
    let key = containers
        .vendor_extension
        .iter()
        .find(|e| e.name == "x-kubernetes-patch-merge-key")
        .unwrap();
    assert_eq!(key.value.as_ref().unwrap().yaml, "\"name\"");
    let pod = defs
        .iter()
        .find(|s| s.name == "io.k8s.api.core.v1.Pod")
        .and_then(|s| s.value.clone())
        .unwrap();
    let gvk = &pod.vendor_extension[0];
    assert_eq!(gvk.name, "x-kubernetes-group-version-kind");
    let yaml: Value = serde_json::from_str(&gvk.value.as_ref().unwrap().yaml).unwrap();
    assert_eq!(
        yaml,
        json!([{ "group": "", "version": "v1", "kind": "Pod" }])
    );
    let paths = d.paths.unwrap().path;
    let deploy = paths
        .iter()
        .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        .and_then(|p| p.value.clone())
        .unwrap();
    let patch = deploy.patch.unwrap();
    assert_eq!(patch.operation_id, "patchAppsV1NamespacedDeployment");
    assert!(patch
        .vendor_extension
        .iter()
        .any(|e| e.name == "x-kubernetes-group-version-kind"));
}

#[test]
fn extra_group_versions_join_the_index_and_v2() {
    static WIDGETS: ResourceInfo = ResourceInfo {
        group: "example.com",
        version: "v1",
        kind: "Widget",
        plural: "widgets",
        singular: "widget",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: resources::STANDARD_VERBS,
        subresources: &[],
    };
    let registry = Registry::default();
    let before: Value = serde_json::from_slice(&registry.index()).unwrap();
    assert!(before["paths"].get("apis/example.com/v1").is_none());
    let mut defs = Map::new();
    defs.insert(
        "com.example.v1.Widget".into(),
        json!({
            "type": "object",
            "properties": {
                "apiVersion": { "type": "string" },
                "kind": { "type": "string" },
                "metadata": { "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" },
                "spec": { "type": "object", "properties": { "size": { "type": "integer" } } },
            },
            "x-kubernetes-group-version-kind": [{ "group": "example.com", "version": "v1", "kind": "Widget" }],
        }),
    );
    let list = schema::list_definition("com.example.v1.Widget", "Widget", "widgets", &defs);
    defs.insert("com.example.v1.WidgetList".into(), list);
    registry
        .set_group_version(ExtraGroupVersion {
            group: "example.com".into(),
            version: "v1".into(),
            resources: vec![(WIDGETS, "com.example.v1.Widget".into())],
            defs,
        })
        .unwrap();
    let index: Value = serde_json::from_slice(&registry.index()).unwrap();
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let doc = registry.v3("apis/example.com/v1").unwrap();
    assert_eq!(
        url,
        format!("/openapi/v3/apis/example.com/v1?hash={}", doc.hash)
    );
    let d: Value = serde_json::from_slice(&doc.body).unwrap();
    let schemas = d["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("com.example.v1.Widget"));
    assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    let mut refs = Vec::new();
    refs_in(&d, &mut refs);
    for r in refs {
        assert!(
            schemas.contains_key(r.trim_start_matches("#/components/schemas/")),
            "{r}"
        );
    }
    let v2: Value = serde_json::from_slice(&registry.v2().json.body).unwrap();
    assert!(v2["definitions"]["com.example.v1.WidgetList"].is_object());
    assert!(v2["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets"].is_object());
    // Built-in group-versions cannot be replaced.
    assert!(registry
        .set_group_version(ExtraGroupVersion {
            group: "apps".into(),
            version: "v1".into(),
            resources: vec![],
            defs: Map::new(),
        })
        .is_err());
    registry.remove_group_version("example.com", "v1");
    assert!(registry.v3("apis/example.com/v1").is_none());
    let v2: Value = serde_json::from_slice(&registry.v2().json.body).unwrap();
    assert!(v2["definitions"].get("com.example.v1.Widget").is_none());
}

fn get(rest: &str, hash: Option<&str>, accept: &str, inm: Option<&str>) -> Response<Bytes> {
    serve(&Request {
        rest,
        hash,
        accept,
        if_none_match: inm,
    })
    .unwrap()
}

#[test]
fn serving_negotiates_and_caches_like_upstream() {
    let index: Value = serde_json::from_slice(get("v3", None, "", None).body()).unwrap();
    let url = index["paths"]["apis/batch/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let hash = url.split_once("?hash=").unwrap().1;
    // With the current hash: immutable.
    let r = get("v3/apis/batch/v1", Some(hash), "application/json", None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, immutable");
    assert!(r.headers()["expires"].to_str().unwrap().ends_with(" GMT"));
    assert_eq!(r.headers()["etag"], format!("\"{hash}\"").as_str());
    // Without: no cache headers, but the ETag allows revalidation.
    let r = get("v3/apis/batch/v1", None, "*/*", None);
    assert!(r.headers().get("cache-control").is_none());
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = get("v3/apis/batch/v1", None, "*/*", Some(&etag));
    assert_eq!(r.status(), 304);
    assert!(r.body().is_empty());
    // An outdated hash is redirected to the current document.
    let r = get("v3/apis/batch/v1", Some("0123"), "application/json", None);
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], url);
    // Only JSON is served for v3; protobuf alone is not acceptable.
    let e = serve(&Request {
        rest: "v3/api/v1",
        hash: None,
        accept: "application/com.github.proto-openapi.spec.v3@v1.0+protobuf",
        if_none_match: None,
    })
    .unwrap_err();
    assert_eq!(e.code, 406);
    // v2: protobuf for client-go, JSON otherwise, the same ETag.
    let pb = get("v2", None, PROTO_V2_ASKED, None);
    assert_eq!(pb.headers()["content-type"], PROTO_V2);
    let js = get("v2", None, "application/json, */*", None);
    assert_eq!(js.headers()["content-type"], "application/json");
    assert_eq!(pb.headers()["etag"], js.headers()["etag"]);
    assert_eq!(js.headers()["vary"], "Accept");
    let js = get(
        "v2",
        None,
        "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        None,
    );
    assert_eq!(js.headers()["content-type"], PROTO_V2);
    assert!(serve(&Request {
        rest: "v2",
        hash: None,
        accept: "text/html",
        if_none_match: None
    })
    .is_err());
    // Unknown group-versions are 404s.
    let e = serve(&Request {
        rest: "v3/apis/nope/v1",
        hash: None,
        accept: "",
        if_none_match: None,
    })
    .unwrap_err();
    assert_eq!(e.code, 404);
}

#[test]
fn http_dates() {
    let t = time::OffsetDateTime::from_unix_timestamp(0).unwrap();
    assert_eq!(http_date(t), "Thu, 01 Jan 1970 00:00:00 GMT");
}
