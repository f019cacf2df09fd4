//! `metadata.managedFields`: decoding, encoding, and the bookkeeping of an
//! update (create, update, patch) by one manager.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::compiled::Schema;
use super::set::Set;
use super::typed::{compare, Scope, Ty};

/// The two operations a manager records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who a set of fields belongs to. Appliers are one manager whatever API
/// version they used; updaters are one per version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ManagerId {
    /// `manager`
    pub manager: String,
    /// `operation`
    pub operation: Operation,
    /// `apiVersion`, empty for appliers.
    pub api_version: String,
    /// `subresource`, e.g. `status`; empty for the main resource.
    pub subresource: String,
}

impl ManagerId {
    /// A manager of `operation`; an empty name is `unknown`, as upstream.
    pub fn new(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> Self {
        ManagerId {
            manager: if manager.is_empty() {
                "unknown".into()
            } else {
                manager.into()
            },
            operation,
            api_version: match operation {
                Operation::Apply => String::new(),
                Operation::Update => api_version.into(),
            },
            subresource: subresource.into(),
        }
    }

    /// Upstream's identifier string (the entry as JSON without fields and
    /// time), which orders managers in conflict messages.
    pub fn identifier(&self) -> String {
        let mut s = format!(
            "{{\"manager\":{},\"operation\":\"{}\"",
            Value::String(self.manager.clone()),
            self.operation.as_str()
        );
        if !self.api_version.is_empty() {
            s.push_str(&format!(
                ",\"apiVersion\":{}",
                Value::String(self.api_version.clone())
            ));
        }
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                ",\"subresource\":{}",
                Value::String(self.subresource.clone())
            ));
        }
        s.push('}');
        s
    }

    /// How conflict messages name the manager: `"kubectl-scale" with
    /// subresource "scale" using apps/v1`.
    pub fn describe(&self) -> String {
        let mut s = Value::String(self.manager.clone()).to_string();
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                " with subresource {}",
                Value::String(self.subresource.clone())
            ));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// One entry of `managedFields`.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Who.
    pub id: ManagerId,
    /// The API version of the last write (for appliers too).
    pub api_version: String,
    /// When the manager last changed something.
    pub time: Option<String>,
    /// What it owns.
    set: Set,
    /// `set` as `FieldsV1`, while it is known: decoded entries keep what
    /// they were read from, written ones what they were written as, so an
    /// entry nobody changed is not encoded again (most of them, when one
    /// of many appliers writes).
    wire: Option<Value>,
    /// `wire` encoded, while it is known: spliced into the stored bytes
    /// of an object whose entries are kept out of its `Value`.
    encoded: Option<Bytes>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.id == other.id
            && self.api_version == other.api_version
            && self.time == other.time
            && self.set == other.set
    }
}

impl Entry {
    /// An entry owning `set`.
    pub fn new(id: ManagerId, api_version: &str, time: Option<String>, set: Set) -> Entry {
        Entry {
            id,
            api_version: api_version.into(),
            time,
            set,
            wire: None,
            encoded: None,
        }
    }

    /// What the manager owns.
    pub fn set(&self) -> &Set {
        &self.set
    }

    /// What the manager owns, to change.
    pub fn set_mut(&mut self) -> &mut Set {
        self.forget_wire();
        &mut self.set
    }

    /// Replace what the manager owns.
    pub fn replace_set(&mut self, set: Set) {
        self.forget_wire();
        self.set = set;
    }

    /// Remove `other`'s paths from what the manager owns.
    pub fn subtract(&mut self, other: &Set) {
        if self.set.subtract(other) {
            self.forget_wire();
        }
    }

    /// The set changed: its encodings are out of date.
    fn forget_wire(&mut self) {
        self.wire = None;
        self.encoded = None;
    }

    /// The set as encoded `FieldsV1`, encoded now if not known, and kept.
    fn fields_v1_bytes(&mut self) -> Bytes {
        if let Some(b) = &self.encoded {
            return b.clone();
        }
        let wire = self.wire.get_or_insert_with(|| self.set.to_fields_v1());
        let b = Bytes::from(serde_json::to_vec(wire).unwrap_or_default());
        self.encoded = Some(b.clone());
        b
    }

    /// The set as `FieldsV1`, encoded now if not known, and kept. One of
    /// the `held` values (taken from the object being written) that equals
    /// it is used instead of a copy: comparing allocates nothing. `at` is
    /// where the entry was in them if nothing moved; that one is tried first.
    fn fields_v1(&mut self, held: &mut [Option<Value>], at: usize) -> Value {
        let wire = self.wire.get_or_insert_with(|| self.set.to_fields_v1());
        let equal = |h: &Option<Value>| h.as_ref() == Some(&*wire);
        let found = match held.get(at) {
            Some(h) if equal(h) => Some(at),
            _ => held.iter().position(equal),
        };
        match found.and_then(|i| held[i].take()) {
            Some(v) => v,
            None => wire.clone(),
        }
    }
}

/// All entries of an object, one per manager.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managed {
    /// The entries, unique by id.
    pub entries: Vec<Entry>,
}

/// The most `Update` managers kept; older ones are merged into one
/// `ancient-changes` entry per API version, as upstream does.
pub const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

impl Managed {
    /// Whether no manager owns anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `id`.
    pub fn get(&self, id: &ManagerId) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.id == id)
    }

    /// The entry of `id`, created empty if missing.
    pub fn entry(&mut self, id: &ManagerId, api_version: &str) -> &mut Entry {
        let i = match self.entries.iter().position(|e| &e.id == id) {
            Some(i) => i,
            None => {
                self.entries
                    .push(Entry::new(id.clone(), api_version, None, Set::new()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    /// Every path anyone owns.
    pub fn owned(&self) -> Set {
        let mut all = Set::new();
        for e in &self.entries {
            all.union_with(&e.set);
        }
        all
    }

    /// Drop managers left with nothing.
    pub fn prune_empty(&mut self) {
        self.entries.retain(|e| !e.set.is_empty());
    }

    /// The `managedFields` of an object; an object without them has none.
    pub fn decode(obj: &Value) -> Result<Managed, String> {
        match obj.get("metadata").and_then(|m| m.get("managedFields")) {
            None | Some(Value::Null) => Ok(Managed::default()),
            Some(Value::Array(list)) => {
                let mut m = Managed::default();
                for (i, e) in list.iter().enumerate() {
                    let entry = decode_entry(i, e)?;
                    match m.entries.iter_mut().find(|x| x.id == entry.id) {
                        Some(x) => *x = entry,
                        None => m.entries.push(entry),
                    }
                }
                Ok(m)
            }
            Some(other) => Err(format!("managedFields must be a list, got {other}")),
        }
    }

    /// The wire form, in upstream's order: appliers first, then by time,
    /// manager, version and subresource. `None` when empty. Entries keep
    /// their encoded sets for the next encoding.
    pub fn encode(&mut self) -> Option<Value> {
        self.encode_reusing(&mut [])
    }

    /// [`Managed::encode`], taking `fieldsV1` values equal to the entries'
    /// from `held` instead of copying them.
    fn encode_reusing(&mut self, held: &mut [Option<Value>]) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        Some(Value::Array(
            self.sorted()
                .into_iter()
                .enumerate()
                .map(|(at, e)| {
                    let mut m = Map::new();
                    m.insert("manager".into(), json!(e.id.manager));
                    m.insert("operation".into(), json!(e.id.operation.as_str()));
                    m.insert("apiVersion".into(), json!(e.api_version));
                    if let Some(t) = &e.time {
                        m.insert("time".into(), json!(t));
                    }
                    m.insert("fieldsType".into(), json!("FieldsV1"));
                    m.insert("fieldsV1".into(), e.fields_v1(held, at));
                    if !e.id.subresource.is_empty() {
                        m.insert("subresource".into(), json!(e.id.subresource));
                    }
                    Value::Object(m)
                })
                .collect(),
        ))
    }

    /// The entries in upstream's order: appliers first, then by time,
    /// manager, version and subresource.
    fn sorted(&mut self) -> Vec<&mut Entry> {
        let mut entries: Vec<&mut Entry> = self.entries.iter_mut().collect();
        entries.sort_by(|a, b| {
            a.id.operation
                .cmp(&b.id.operation)
                .then_with(|| {
                    a.time
                        .as_deref()
                        .unwrap_or("")
                        .cmp(b.time.as_deref().unwrap_or(""))
                })
                .then_with(|| a.id.manager.cmp(&b.id.manager))
                .then_with(|| a.api_version.cmp(&b.api_version))
                .then_with(|| a.id.subresource.cmp(&b.id.subresource))
        });
        entries
    }

    /// The wire form as JSON, byte for byte what encoding the `Value` of
    /// [`Managed::encode`] gives (keys sorted, no spaces); `None` when
    /// empty. Only the entries whose sets changed since they were last
    /// encoded (or decoded) are encoded; the others' `fieldsV1` are copied
    /// from the bytes they keep.
    pub fn encode_bytes(&mut self) -> Option<Bytes> {
        if self.entries.is_empty() {
            return None;
        }
        let mut buf = Vec::with_capacity(self.entries.len() * 640);
        let s = |buf: &mut Vec<u8>, v: &str| {
            // Writing a string to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *buf, v);
        };
        buf.push(b'[');
        for (i, e) in self.sorted().into_iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            // The keys in the order of a serde_json map: sorted.
            buf.extend_from_slice(b"{\"apiVersion\":");
            s(&mut buf, &e.api_version);
            buf.extend_from_slice(b",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":");
            buf.extend_from_slice(&e.fields_v1_bytes());
            buf.extend_from_slice(b",\"manager\":");
            s(&mut buf, &e.id.manager);
            buf.extend_from_slice(b",\"operation\":\"");
            buf.extend_from_slice(e.id.operation.as_str().as_bytes());
            buf.push(b'"');
            if !e.id.subresource.is_empty() {
                buf.extend_from_slice(b",\"subresource\":");
                s(&mut buf, &e.id.subresource);
            }
            if let Some(t) = &e.time {
                buf.extend_from_slice(b",\"time\":");
                s(&mut buf, t);
            }
            buf.push(b'}');
        }
        buf.push(b']');
        Some(Bytes::from(buf))
    }

    /// Put the entries into `obj` (or remove `managedFields` if none).
    pub fn write_to(&mut self, obj: &mut Value) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            if let Some(v) = self.encode() {
                obj["metadata"] = json!({ "managedFields": v });
            }
            return;
        };
        // The object's own entries (most often a copy of the stored ones):
        // their `fieldsV1` are reused where they still hold.
        let mut held: Vec<Option<Value>> = match meta.remove("managedFields") {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|mut i| i.get_mut("fieldsV1").map(Value::take))
                .collect(),
            _ => Vec::new(),
        };
        match self.encode_reusing(&mut held) {
            Some(v) => {
                meta.insert("managedFields".into(), v);
            }
            None => {
                meta.remove("managedFields");
            }
        }
    }

    /// Keep at most [`MAX_UPDATE_MANAGERS`] `Update` managers: the oldest
    /// are merged, per API version, into an `ancient-changes` manager.
    pub fn cap_updaters(&mut self, max: usize) {
        let mut updaters: Vec<ManagerId> = self
            .entries
            .iter()
            .filter(|e| e.id.operation == Operation::Update)
            .map(|e| e.id.clone())
            .collect();
        if updaters.len() <= max {
            return;
        }
        let key = |m: &Managed, id: &ManagerId| {
            (
                m.get(id).and_then(|e| e.time.clone()).unwrap_or_default(),
                id.identifier(),
            )
        };
        updaters.sort_by_cached_key(|id| key(self, id));
        let mut first_of_version: std::collections::HashMap<String, ManagerId> =
            std::collections::HashMap::new();
        let mut count = updaters.len();
        for id in updaters {
            if count <= max {
                break;
            }
            let Some(e) = self.get(&id).cloned() else {
                continue;
            };
            let bucket = ManagerId::new(ANCIENT_CHANGES, Operation::Update, &e.api_version, "");
            match first_of_version.get(&e.api_version) {
                None => {
                    first_of_version.insert(e.api_version.clone(), id);
                }
                Some(first) => {
                    if self.get(&bucket).is_none() {
                        if let Some(f) = self.entries.iter_mut().find(|x| &x.id == first) {
                            f.id = bucket.clone();
                        }
                    }
                    self.entries.retain(|x| x.id != id);
                    let b = self.entry(&bucket, &e.api_version);
                    b.set_mut().union_with(&e.set);
                    b.time = e.time.clone();
                    count -= 1;
                }
            }
        }
    }
}

fn decode_entry(i: usize, e: &Value) -> Result<Entry, String> {
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
    let operation = match s("operation") {
        "Apply" => Operation::Apply,
        "Update" => Operation::Update,
        _ => return Err("operation must be `Apply` or `Update`".into()),
    };
    let api_version = s("apiVersion");
    if api_version.is_empty() {
        return Err("apiVersion must not be empty".into());
    }
    match s("fieldsType") {
        "FieldsV1" => {}
        "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
        other => {
            return Err(format!(
                "invalid fieldsType {other:?} in managed fields entry {i}"
            ))
        }
    }
    let (set, wire) = match e.get("fieldsV1") {
        None | Some(Value::Null) => (Set::new(), None),
        Some(f) => (
            Set::from_fields_v1(f).map_err(|err| format!("error decoding set: {err}"))?,
            Some(f.clone()),
        ),
    };
    Ok(Entry {
        id: ManagerId::new(s("manager"), operation, api_version, s("subresource")),
        api_version: api_version.into(),
        time: e.get("time").and_then(Value::as_str).map(str::to_string),
        set,
        wire,
        encoded: None,
    })
}

/// Whether a client asked to clear `managedFields`: an empty list, or a
/// list of one empty entry.
fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) if a.is_empty() => true,
        Some(Value::Array(a)) if a.len() == 1 => a[0].as_object().is_some_and(|m| {
            m.values().all(|x| match x {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            })
        }),
        _ => false,
    }
}

/// A write by one manager, and what of the object it may own.
#[derive(Clone, Debug)]
pub struct Writer<'a> {
    /// The manager name (`fieldManager`, else from the User-Agent).
    pub manager: &'a str,
    /// The API version of the request, e.g. `apps/v1`.
    pub api_version: &'a str,
    /// `status`, `scale`, or empty for the main resource.
    pub subresource: &'a str,
    /// Which parts of the object are not tracked on this endpoint.
    pub scope: Scope,
    /// The time to record, as metav1.Time.
    pub now: String,
}

impl Writer<'_> {
    /// The writer's manager id for `operation`.
    pub fn id(&self, operation: Operation) -> ManagerId {
        ManagerId::new(self.manager, operation, self.api_version, self.subresource)
    }
}

/// The managers an update starts from: the live object's for subresources;
/// for the main resource, the ones the client sent if it sent valid ones
/// (so clients can hand ownership over), none if it sent an empty list,
/// else the live object's. Invalid entries are never kept.
/// `known` is `old`'s managers already decoded, if the caller has them.
fn starting_point(
    old: Option<&Value>,
    new: &Value,
    w: &Writer<'_>,
    known: Option<Managed>,
    sent_live: bool,
) -> Managed {
    let sent = new.get("metadata").and_then(|m| m.get("managedFields"));
    // The client sent back the live managers unchanged (a patch that does
    // not touch them): no need to decode them again, nor to compare them
    // if the caller knows.
    let unchanged = known.is_some()
        && sent.is_some()
        && (sent_live
            || old.is_some_and(|o| o.get("metadata").and_then(|m| m.get("managedFields")) == sent));
    let live = |known: Option<Managed>| {
        known.unwrap_or_else(|| {
            old.and_then(|o| Managed::decode(o).ok())
                .unwrap_or_default()
        })
    };
    if !w.subresource.is_empty() {
        return live(known);
    }
    if is_reset(sent) {
        return Managed::default();
    }
    if unchanged {
        return live(known);
    }
    match Managed::decode(new) {
        Ok(m) if !m.is_empty() => m,
        _ => live(known),
    }
}

/// Record in `new.metadata.managedFields` what `w` changed from `old`
/// (`None` on create). Managers lose what the writer changed or removed;
/// the writer gains what it changed. An existing object without managed
/// fields stays without, as upstream.
pub fn track_update<S: Schema>(ty: Ty<S>, old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    track_update_known(ty, old, new, w, None, false);
}

/// [`track_update`], with `old`'s managers already decoded (`known`), if
/// the caller has them; returns the managers written to `new`, if any, for
/// the next update of the object. `sent_live`: the caller knows that
/// `new` carries `old`'s `managedFields` as they were (a change that did
/// not touch them), so they need not be compared.
pub fn track_update_known<S: Schema>(
    ty: Ty<S>,
    old: Option<&Value>,
    new: &mut Value,
    w: &Writer<'_>,
    known: Option<Managed>,
    sent_live: bool,
) -> Option<Managed> {
    let mut managed = starting_point(old, new, w, known, sent_live);
    // Out of the comparison; put back for `write_to` to reuse.
    let held = new
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"));
    if managed.is_empty() && old.is_some() {
        return None;
    }
    if managed.is_empty() {
        // A create with nobody else to take fields from (the common case):
        // the writer owns everything, written without building a set.
        let fields = super::typed::added_fields_v1(ty, new, &w.scope);
        if !fields.is_empty() {
            // Built as values, not with `json!`, which would copy the
            // fields through `Serialize`.
            let mut entry = Map::new();
            let s = |v: &str| Value::String(v.to_string());
            entry.insert("manager".into(), s(&w.id(Operation::Update).manager));
            entry.insert("operation".into(), s("Update"));
            entry.insert("apiVersion".into(), s(w.api_version));
            entry.insert("time".into(), s(&w.now));
            entry.insert("fieldsType".into(), s("FieldsV1"));
            entry.insert("fieldsV1".into(), Value::Object(fields));
            if !w.subresource.is_empty() {
                entry.insert("subresource".into(), s(w.subresource));
            }
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "managedFields".into(),
                    Value::Array(vec![Value::Object(entry)]),
                );
            }
        }
        return None;
    }
    let empty = json!({});
    let cmp = compare(ty, old.unwrap_or(&empty), new, &w.scope);
    // Moved, not copied: on a create this is every field of the object.
    let mut changed = cmp.added;
    changed.union_with(&cmp.modified);
    let me = w.id(Operation::Update);
    for e in &mut managed.entries {
        // The writer takes the changed fields, so it keeps its own.
        if e.id != me {
            e.subtract(&changed);
        }
        e.subtract(&cmp.removed);
    }
    if !changed.is_empty() {
        let e = managed.entry(&me, w.api_version);
        if e.set.is_empty() {
            e.replace_set(changed);
        } else if e.set.union_with(&changed) {
            // Still encoded as before if it owned all of that already.
            e.forget_wire();
        }
        e.api_version = w.api_version.into();
        e.time = Some(w.now.clone());
    }
    managed.prune_empty();
    managed.cap_updaters(MAX_UPDATE_MANAGERS);
    if let (Some(h), Some(m)) = (held, new.get_mut("metadata").and_then(Value::as_object_mut)) {
        m.insert("managedFields".into(), h);
    }
    managed.write_to(new);
    Some(managed)
}

/// Whether two objects carry the same managers and sets, whatever the
/// times: a write that changes only times is no change. Entries are sorted
/// by time, so they are compared in any order.
pub fn same_ignoring_time(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Option<Vec<String>> {
        let list = v.get("metadata")?.get("managedFields")?.as_array()?;
        let mut out: Vec<String> = list
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Some(m) = e.as_object_mut() {
                    m.remove("time");
                }
                e.to_string()
            })
            .collect();
        out.sort();
        Some(out)
    };
    strip(a) == strip(b)
}

/// Record that `w` set the field at `path` of `new` (changed from `old`)
/// through a subresource that speaks another kind (`scale` and its
/// replicas): the writer takes the field over if its value changed.
pub fn track_field(
    old: &Value,
    new: &mut Value,
    path: &[super::path::PathElement],
    w: &Writer<'_>,
) {
    let Ok(mut managed) = Managed::decode(old) else {
        return;
    };
    if managed.is_empty() {
        return;
    }
    fn at<'v>(v: &'v Value, path: &[super::path::PathElement]) -> Option<&'v Value> {
        path.iter().try_fold(v, |cur, pe| match pe {
            super::path::PathElement::Field(k) => cur.get(k),
            _ => None,
        })
    }
    if at(old, path) != at(new, path) {
        let taken = Set::from_paths([path]);
        let id = w.id(Operation::Update);
        for e in &mut managed.entries {
            e.subtract(&taken);
        }
        let e = managed.entry(&id, w.api_version);
        e.set_mut().union_with(&taken);
        e.time = Some(w.now.clone());
        managed.prune_empty();
        managed.cap_updaters(MAX_UPDATE_MANAGERS);
    }
    managed.write_to(new);
}
