//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get`
//! asks for with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! kubectl prints whatever columns the server sends, so the columns, their
//! order, types, formats and priorities, and the text of every cell are
//! upstream's (`pkg/printers/internalversion/printers.go`) exactly. Like
//! upstream's API server the cells are always generated "wide": priority-1
//! columns are always present and kubectl hides them unless `-o wide`.
//!
//! One module per API group (pods get their own, they are most of the logic);
//! each exposes `COLUMNS` constants and `fn(&Value, &Clock) -> Vec<Value>`
//! row builders that [`printer_for`] pairs up. Resources without a printer
//! get upstream's default table, NAME and CREATED AT.

mod apps;
mod batch;
mod certificates;
mod core;
mod custom;
mod events;
mod format;
mod networking;
mod other;
mod pod;
mod quantity;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;

pub use format::human_duration;
use format::Clock;

/// What each row carries besides its cells: the `includeObject` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object; kubectl asks for this when it needs nothing but the cells.
    None,
    /// A `PartialObjectMetadata` (the default): kubectl reads the namespace
    /// for `-A` and labels for `-L`/`--show-labels` from it.
    #[default]
    Metadata,
    /// The whole object, as it would be returned by a plain GET.
    Object,
}

impl IncludeObject {
    /// Parse the `includeObject` query parameter (empty when absent) the way
    /// upstream validates it: unknown values are a 400.
    pub fn try_parse(value: &str) -> ApiResult<Self> {
        match value {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(ApiError::bad_request(format!(
                "unrecognized includeObject value: {other:?}"
            ))),
        }
    }

    /// [`IncludeObject::try_parse`] for callers that cannot fail the request:
    /// an unknown value falls back to the default, `Metadata`.
    pub fn parse(value: &str) -> Self {
        Self::try_parse(value).unwrap_or_default()
    }
}

/// One `TableColumnDefinition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Header as upstream spells it, e.g. `Nominated Node`; kubectl upper-cases it.
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `boolean`, `date`.
    pub kind: &'static str,
    /// OpenAPI format; `name` marks the column holding the object's name,
    /// which kubectl prefixes with the kind (`pod/web`) when printing several kinds.
    pub format: &'static str,
    /// Human-readable description.
    pub description: &'static str,
    /// 0 for the default view, 1 for columns only `-o wide` shows.
    pub priority: u8,
}

impl Column {
    /// A column of the default view.
    pub const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    /// A priority-1 column, shown only by `-o wide`.
    pub const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 1,
        }
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// `ObjectMeta.name`'s documentation, which upstream uses for every NAME column.
pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `ObjectMeta.creationTimestamp`'s documentation, used for every AGE column.
pub const CREATION_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The NAME column every printer starts with.
pub(crate) const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};

/// The AGE column.
pub(crate) const AGE: Column = Column::new("Age", "string", CREATION_DESCRIPTION);

/// Wide CONTAINERS column of workload printers.
pub(crate) const CONTAINERS: Column = Column::wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);

/// Wide IMAGES column of workload printers.
pub(crate) const IMAGES: Column = Column::wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// Upstream's default table (`rest.defaultTableConvertor`).
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Created At", "date", CREATION_DESCRIPTION),
];

/// Builds one row's cells, in column order, from a stored object.
type CellsFn = fn(&Value, &Clock) -> Vec<Value>;

/// Builds a row's `conditions`, for the few kinds upstream sets them on.
type ConditionsFn = fn(&Value) -> Option<Value>;

/// The columns and row builder of one kind.
#[derive(Clone, Copy)]
struct Printer {
    columns: &'static [Column],
    cells: CellsFn,
    conditions: Option<ConditionsFn>,
}

impl Printer {
    const fn new(columns: &'static [Column], cells: CellsFn) -> Self {
        Printer {
            columns,
            cells,
            conditions: None,
        }
    }
}

/// The printer upstream registers for a kind, or the default table.
fn printer_for(info: &ResourceInfo) -> Printer {
    match (info.group, info.kind) {
        ("", "Pod") => Printer {
            conditions: Some(pod::conditions),
            ..Printer::new(pod::COLUMNS, pod::cells)
        },
        ("", "ConfigMap") => Printer::new(core::CONFIG_MAP, core::config_map),
        ("", "Endpoints") => Printer::new(core::ENDPOINTS, core::endpoints),
        ("", "Event") => Printer::new(events::COLUMNS, events::core_event),
        ("events.k8s.io", "Event") => Printer::new(events::COLUMNS, events::events_event),
        ("", "Namespace") => Printer::new(core::NAMESPACE, core::namespace),
        ("", "Node") => Printer::new(core::NODE, core::node),
        ("", "PersistentVolumeClaim") => Printer::new(core::PVC, core::pvc),
        ("", "PersistentVolume") => Printer::new(core::PV, core::pv),
        ("", "ReplicationController") => Printer::new(core::RC, core::replication_controller),
        ("", "ResourceQuota") => Printer::new(core::RESOURCE_QUOTA, core::resource_quota),
        ("", "Secret") => Printer::new(core::SECRET, core::secret),
        ("", "ServiceAccount") => Printer::new(core::SERVICE_ACCOUNT, core::service_account),
        ("", "Service") => Printer::new(core::SERVICE, core::service),
        ("apps", "ControllerRevision") => {
            Printer::new(apps::CONTROLLER_REVISION, apps::controller_revision)
        }
        ("apps", "DaemonSet") => Printer::new(apps::DAEMON_SET, apps::daemon_set),
        ("apps", "Deployment") => Printer::new(apps::DEPLOYMENT, apps::deployment),
        ("apps", "ReplicaSet") => Printer::new(apps::REPLICA_SET, apps::replica_set),
        ("apps", "StatefulSet") => Printer::new(apps::STATEFUL_SET, apps::stateful_set),
        ("batch", "CronJob") => Printer::new(batch::CRON_JOB, batch::cron_job),
        ("batch", "Job") => Printer::new(batch::JOB, batch::job),
        ("coordination.k8s.io", "Lease") => Printer::new(other::LEASE, other::lease),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            Printer::new(certificates::CSR, certificates::csr)
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            Printer::new(networking::ENDPOINT_SLICE, networking::endpoint_slice)
        }
        ("networking.k8s.io", "IngressClass") => {
            Printer::new(networking::INGRESS_CLASS, networking::ingress_class)
        }
        ("networking.k8s.io", "Ingress") => Printer::new(networking::INGRESS, networking::ingress),
        ("networking.k8s.io", "NetworkPolicy") => {
            Printer::new(networking::NETWORK_POLICY, networking::network_policy)
        }
        ("node.k8s.io", "RuntimeClass") => Printer::new(other::RUNTIME_CLASS, other::runtime_class),
        ("policy", "PodDisruptionBudget") => Printer::new(other::PDB, other::pod_disruption_budget),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            Printer::new(other::CLUSTER_ROLE_BINDING, other::role_binding)
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            Printer::new(other::ROLE_BINDING, other::role_binding)
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            Printer::new(other::PRIORITY_CLASS, other::priority_class)
        }
        // LimitRange, Role, ClusterRole, SelfSubjectReview and anything added
        // later without a printer: upstream registers none, so they get the
        // generic table.
        _ => Printer::new(DEFAULT_COLUMNS, default_cells),
    }
}

/// The default table's cells: the name and the creation time in RFC 3339.
fn default_cells(item: &Value, _: &Clock) -> Vec<Value> {
    vec![
        json!(format::s(item, "/metadata/name")),
        json!(format::rfc3339(format::parse_time(
            item.pointer("/metadata/creationTimestamp")
        ))),
    ]
}

/// The column definitions served for a resource.
pub fn columns(info: &ResourceInfo) -> &'static [Column] {
    printer_for(info).columns
}

/// Render `items` (a list's items, or the single object of a GET) of the
/// resource `info` as a complete `meta.k8s.io/v1` `Table`.
///
/// `list_metadata` becomes the table's `metadata` (the list's
/// `resourceVersion`, `continue`, `remainingItemCount`; for a single object
/// its `resourceVersion`). Ages are measured from `now`.
pub fn render(
    info: &ResourceInfo,
    items: &[Value],
    include: IncludeObject,
    list_metadata: Value,
    now: std::time::SystemTime,
) -> Value {
    render_table(info, items, include, true, list_metadata, now)
}

/// [`render`], optionally without column definitions: upstream's
/// `TableOptions.noHeaders`, which leaves `columnDefinitions` null, as on the
/// second and later events of a watch served as tables.
pub fn render_table(
    info: &ResourceInfo,
    items: &[Value],
    include: IncludeObject,
    headers: bool,
    list_metadata: Value,
    now: std::time::SystemTime,
) -> Value {
    let clock = Clock::new(now);
    if crate::crd::is_custom(info) {
        let v = crate::crd::version_of(info).map(|(_, v)| v);
        let columns = if headers {
            Value::Array(custom::columns(v.as_deref()))
        } else {
            Value::Null
        };
        let rows: Vec<Value> = items
            .iter()
            .map(|item| {
                let mut row = Map::new();
                row.insert(
                    "cells".into(),
                    Value::Array(custom::cells(v.as_deref(), item, &clock)),
                );
                attach_object(&mut row, item, include);
                Value::Object(row)
            })
            .collect();
        return json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_metadata,
            "columnDefinitions": columns,
            "rows": rows,
        });
    }
    let printer = printer_for(info);
    let columns = if headers {
        Value::Array(printer.columns.iter().map(|c| c.to_json()).collect())
    } else {
        Value::Null
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|item| row(&printer, item, include, &clock))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn row(printer: &Printer, item: &Value, include: IncludeObject, clock: &Clock) -> Value {
    let mut row = Map::new();
    let cells = (printer.cells)(item, clock);
    debug_assert_eq!(cells.len(), printer.columns.len(), "cells of {item}");
    row.insert("cells".into(), Value::Array(cells));
    if let Some(conditions) = printer.conditions.and_then(|f| f(item)) {
        row.insert("conditions".into(), conditions);
    }
    attach_object(&mut row, item, include);
    Value::Object(row)
}

/// The row's `object`, per `includeObject`.
fn attach_object(row: &mut Map<String, Value>, item: &Value, include: IncludeObject) {
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let metadata = item.get("metadata").cloned().unwrap_or_else(|| json!({}));
            row.insert(
                "object".into(),
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}),
            );
        }
        IncludeObject::Object => {
            row.insert("object".into(), item.clone());
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared fixtures: a fixed "now" and helpers to render one object.

    use super::*;
    use crate::resources::by_kind;
    use time::OffsetDateTime;

    /// 2024-01-02T03:04:05Z, the instant every test renders at.
    fn instant() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_704_164_645).unwrap()
    }

    /// [`instant`] as the `now` argument of [`render`].
    pub fn now() -> std::time::SystemTime {
        instant().into()
    }

    /// An RFC 3339 timestamp `secs` seconds before [`now`].
    pub fn ago(secs: i64) -> String {
        format::rfc3339(Some(instant() - time::Duration::seconds(secs)))
    }

    /// The cells of one object of `group`/`kind`, after checking the column count.
    pub fn cells(group: &str, kind: &str, item: Value) -> Vec<Value> {
        let info = by_kind(group, kind).unwrap_or_else(|| panic!("no resource {group}/{kind}"));
        let table = render(info, &[item], IncludeObject::None, json!({}), now());
        let cols = table["columnDefinitions"].as_array().unwrap().len();
        let cells = table["rows"][0]["cells"].as_array().unwrap().clone();
        assert_eq!(cells.len(), cols, "{kind}: one cell per column");
        cells
    }

    /// `(name, type, format, priority)` of each column of `group`/`kind`.
    pub fn headers(group: &str, kind: &str) -> Vec<(&'static str, &'static str, &'static str, u8)> {
        columns(by_kind(group, kind).unwrap())
            .iter()
            .map(|c| (c.name, c.kind, c.format, c.priority))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::resources::{by_kind, RESOURCES};

    #[test]
    fn include_object_parses_upstream_values() {
        assert_eq!(
            IncludeObject::try_parse("").unwrap(),
            IncludeObject::Metadata
        );
        assert_eq!(
            IncludeObject::try_parse("Metadata").unwrap(),
            IncludeObject::Metadata
        );
        assert_eq!(
            IncludeObject::try_parse("None").unwrap(),
            IncludeObject::None
        );
        assert_eq!(
            IncludeObject::try_parse("Object").unwrap(),
            IncludeObject::Object
        );
        let e = IncludeObject::try_parse("all").unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(e.message, "unrecognized includeObject value: \"all\"");
        assert_eq!(IncludeObject::parse("all"), IncludeObject::Metadata);
        assert_eq!(IncludeObject::parse("None"), IncludeObject::None);
    }

    #[test]
    fn table_envelope_and_row_objects() {
        let info = by_kind("", "ConfigMap").unwrap();
        let cm = json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "cfg", "namespace": "default", "labels": {"a": "b"}, "creationTimestamp": ago(30)},
            "data": {"k": "v"}
        });
        let meta = json!({"resourceVersion": "42"});
        let t = render(
            info,
            std::slice::from_ref(&cm),
            IncludeObject::Metadata,
            meta.clone(),
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], meta);
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][0]["priority"], 0);
        assert_eq!(t["columnDefinitions"][1]["format"], "");
        assert_eq!(t["rows"][0]["cells"], json!(["cfg", 1, "30s"]));
        let obj = &t["rows"][0]["object"];
        assert_eq!(obj["kind"], "PartialObjectMetadata");
        assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(obj["metadata"], cm["metadata"]);
        assert!(obj.get("data").is_none());

        let t = render(
            info,
            std::slice::from_ref(&cm),
            IncludeObject::Object,
            json!({}),
            now(),
        );
        assert_eq!(t["rows"][0]["object"], cm);
        let t = render(
            info,
            std::slice::from_ref(&cm),
            IncludeObject::None,
            json!({}),
            now(),
        );
        assert!(t["rows"][0].get("object").is_none());
        let t = render(info, &[], IncludeObject::None, json!({}), now());
        assert_eq!(t["rows"], json!([]));
        let t = render_table(info, &[cm], IncludeObject::None, false, json!({}), now());
        assert_eq!(t["columnDefinitions"], Value::Null);
    }

    #[test]
    fn default_table_is_name_and_created_at() {
        for kind in ["LimitRange", "Role", "ClusterRole"] {
            let group = if kind == "LimitRange" {
                ""
            } else {
                "rbac.authorization.k8s.io"
            };
            assert_eq!(
                headers(group, kind),
                vec![("Name", "string", "name", 0), ("Created At", "date", "", 0)]
            );
            let c = cells(
                group,
                kind,
                json!({"metadata": {"name": "x", "creationTimestamp": "2023-05-06T07:08:09Z"}}),
            );
            assert_eq!(c, vec![json!("x"), json!("2023-05-06T07:08:09Z")]);
        }
        let c = cells(
            "authentication.k8s.io",
            "SelfSubjectReview",
            json!({"metadata": {}}),
        );
        assert_eq!(c, vec![json!(""), json!("0001-01-01T00:00:00Z")]);
    }

    #[test]
    fn every_resource_renders_an_empty_object() {
        // A bare object must never panic and always yields one cell per column.
        for info in RESOURCES {
            let t = render(
                info,
                &[json!({})],
                IncludeObject::Metadata,
                json!({}),
                now(),
            );
            let cols = t["columnDefinitions"].as_array().unwrap().len();
            assert_eq!(
                t["rows"][0]["cells"].as_array().unwrap().len(),
                cols,
                "{}",
                info.plural
            );
            assert_eq!(
                t["columnDefinitions"][0]["name"],
                if info.kind == "Event" {
                    "Last Seen"
                } else {
                    "Name"
                }
            );
        }
    }
}
