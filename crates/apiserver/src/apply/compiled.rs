//! What server-side apply asks of a schema, answered two ways: by reading
//! the OpenAPI JSON ([`SchemaNode`]), and from a [`Compiled`] tree built
//! once per kind from those same answers.
//!
//! Reading the JSON costs several map lookups per object node (`$ref`
//! resolution by definition name, `properties`, the extensions, the list
//! keys as new strings); the managed fields of every write walk the whole
//! object, so the write paths use the compiled tree, where a child is one
//! binary search and the shapes are precomputed. The compiled tree is made
//! of the [`SchemaNode`] answers, so both agree by construction (and the
//! tests check it on the built-in kinds).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use serde_json::Value;

use super::typed::Shape;
use crate::schema::{ListType, SchemaNode, REF_PREFIX};

/// A point in a schema, as the apply rules read it. `Option<S>` is a
/// schema or "deduced from the value" (`None`).
pub trait Schema: Copy {
    /// How an object (`list: false`) or a list (`list: true`) is tracked
    /// here; other values are always [`Shape::Leaf`].
    fn shape_of(&self, list: bool) -> Shape;
    /// The schema of field `key` of an object (see [`SchemaNode`]'s
    /// `field_ty` rules: a property, else the map's values; `metadata` of
    /// a kind is an ObjectMeta).
    fn field(&self, key: &str) -> Option<Self>;
    /// Whether `key` is a declared property.
    fn is_named(&self, key: &str) -> bool;
    /// The schema of a list's items.
    fn items(&self) -> Option<Self>;
    /// The default of field `key` of this (item) schema, used for list-map
    /// keys an item omits.
    fn key_default(&self, key: &str) -> Option<Value>;
    /// Facts `validate` reads.
    fn facts(&self) -> Facts<'_>;
}

/// The type facts an apply configuration is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts<'a> {
    /// Quantities and int-or-string: any scalar.
    pub untyped_scalar: bool,
    /// An object schema (`type: object`, properties or additionalProperties).
    pub object: bool,
    /// A list schema (`type: array` or items).
    pub list: bool,
    /// Declares `properties`.
    pub has_properties: bool,
    /// `x-kubernetes-preserve-unknown-fields: true`.
    pub preserves_unknown: bool,
    /// The stated JSON type.
    pub type_name: Option<&'a str>,
    /// The stated format (`int32`, `date-time`, `byte`, ...).
    pub format: Option<&'a str>,
}

fn type_is(n: &SchemaNode<'_>, t: &str) -> bool {
    n.type_name() == Some(t)
}

fn is_list_schema(n: &SchemaNode<'_>) -> bool {
    type_is(n, "array") || n.value.get("items").is_some()
}

/// The definition a node refers to, e.g. `io.k8s.api.core.v1.ContainerPort`.
fn definition_name<'a>(n: &SchemaNode<'a>) -> Option<&'a str> {
    let site = n.site;
    let r = site.get("$ref").or_else(|| {
        site.get("allOf")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 1)
            .and_then(|a| a[0].get("$ref"))
    })?;
    r.as_str()?.strip_prefix(REF_PREFIX)
}

impl<'a> Schema for SchemaNode<'a> {
    fn shape_of(&self, list: bool) -> Shape {
        let n = self;
        if !list {
            // Most object schemas declare their fields: decided at once.
            let declared = n.value.get("properties").is_some()
                || n.value.get("additionalProperties").is_some();
            let scalar = || {
                ["string", "integer", "number", "boolean"]
                    .iter()
                    .any(|t| type_is(n, t))
            };
            return if n.map_atomic()
                || (!declared && (scalar() || (is_list_schema(n) && !type_is(n, "object"))))
            {
                Shape::Leaf
            } else {
                Shape::Fields
            };
        }
        if !is_list_schema(n) {
            return Shape::Leaf;
        }
        match n.list_type() {
            ListType::Atomic => Shape::Leaf,
            ListType::Set => Shape::Set,
            ListType::Map(keys) if keys.is_empty() => Shape::Set,
            ListType::Map(keys) => Shape::Keyed(keys.into()),
        }
    }

    /// The `metadata` of a kind (an object with `apiVersion` and `kind`)
    /// whose schema leaves it open, as custom resource schemas do, is an
    /// ObjectMeta: upstream gives custom resources the ObjectMeta schema too.
    fn field(&self, key: &str) -> Option<Self> {
        let n = self;
        let child = n.property(key).or_else(|| n.values());
        if key == "metadata"
            && child.is_none_or(|c| c.value.get("properties").is_none())
            && n.property("apiVersion").is_some()
            && n.property("kind").is_some()
        {
            return crate::schema::builtin()
                .definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
                .or(child);
        }
        child
    }

    fn is_named(&self, key: &str) -> bool {
        self.property(key).is_some()
    }

    fn items(&self) -> Option<Self> {
        SchemaNode::items(self)
    }

    /// Upstream's OpenAPI carries `default: "TCP"` on the `protocol` of
    /// container and service ports (`+default="TCP"`); our generated schemas
    /// do not, so those two are known here.
    fn key_default(&self, key: &str) -> Option<Value> {
        if let Some(d) = self.property(key).and_then(|p| p.ext("default")) {
            return Some(d.clone());
        }
        let def = definition_name(self)?;
        (key == "protocol"
            && matches!(
                def,
                "io.k8s.api.core.v1.ContainerPort" | "io.k8s.api.core.v1.ServicePort"
            ))
        .then(|| Value::String("TCP".into()))
    }

    fn facts(&self) -> Facts<'_> {
        let n = self;
        Facts {
            untyped_scalar: matches!(
                definition_name(n),
                Some("io.k8s.apimachinery.pkg.api.resource.Quantity")
            ) || n.ext("x-kubernetes-int-or-string").and_then(Value::as_bool)
                == Some(true),
            object: type_is(n, "object")
                || n.value.get("properties").is_some()
                || n.value.get("additionalProperties").is_some(),
            list: is_list_schema(n),
            has_properties: n.value.get("properties").is_some(),
            preserves_unknown: n.preserves_unknown(),
            type_name: n.type_name(),
            format: n.value.get("format").and_then(Value::as_str),
        }
    }
}

/// A schema compiled for the write paths: every node reachable from a
/// kind's root, with its answers precomputed and its children by index.
#[derive(Debug)]
pub struct Compiled {
    nodes: Vec<NodeData>,
}

#[derive(Debug)]
struct NodeData {
    object_shape: Shape,
    list_shape: Shape,
    /// Fields with a schema of their own, sorted by name: the properties
    /// (named) and an ObjectMeta `metadata` the rules add (not named).
    fields: Vec<(Box<str>, u32, bool)>,
    /// Any other field: the map's values.
    values: Option<u32>,
    items: Option<u32>,
    /// Defaults of the properties that have one (and the port protocols).
    defaults: Vec<(Box<str>, Value)>,
    untyped_scalar: bool,
    object: bool,
    list: bool,
    has_properties: bool,
    preserves_unknown: bool,
    type_name: Option<Box<str>>,
    format: Option<Box<str>>,
}

/// A node of a [`Compiled`] tree.
#[derive(Clone, Copy)]
pub struct Node<'c> {
    tree: &'c Compiled,
    i: u32,
}

impl std::fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("i", &self.i).finish()
    }
}

impl Compiled {
    /// Compile everything reachable from `root`. Nodes are identified by
    /// the JSON they were reached at, so recursive schemas terminate.
    pub fn new(root: SchemaNode<'_>) -> Compiled {
        let mut b = Builder {
            ids: HashMap::new(),
            leaves: HashMap::new(),
            queue: Vec::new(),
            nodes: Vec::new(),
        };
        b.intern(root);
        while let Some((slot, n)) = b.queue.pop() {
            let mut keys: Vec<&str> = n
                .value
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            if !keys.contains(&"metadata") {
                keys.push("metadata");
            }
            let mut fields: Vec<(Box<str>, u32, bool)> = Vec::new();
            for k in keys {
                if let Some(c) = Schema::field(&n, k) {
                    fields.push((Box::from(k), b.intern(c), Schema::is_named(&n, k)));
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            let values = n.values().map(|c| b.intern(c));
            let items = SchemaNode::items(&n).map(|c| b.intern(c));
            let mut defaults = Vec::new();
            if let Some(p) = n.value.get("properties").and_then(Value::as_object) {
                for k in p.keys() {
                    if let Some(d) = Schema::key_default(&n, k) {
                        defaults.push((Box::from(k.as_str()), d));
                    }
                }
            }
            if !defaults.iter().any(|(k, _)| &**k == "protocol") {
                if let Some(d) = Schema::key_default(&n, "protocol") {
                    defaults.push((Box::from("protocol"), d));
                }
            }
            b.nodes[slot] = Some(node_data(&n, fields, values, items, defaults));
        }
        Compiled {
            nodes: b
                .nodes
                .into_iter()
                .map(|n| n.expect("every interned node is compiled"))
                .collect(),
        }
    }

    /// The root node.
    pub fn root(&self) -> Node<'_> {
        Node { tree: self, i: 0 }
    }

    /// Nodes in the tree.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree is empty (never: there is a root).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

fn node_data(
    n: &SchemaNode<'_>,
    fields: Vec<(Box<str>, u32, bool)>,
    values: Option<u32>,
    items: Option<u32>,
    defaults: Vec<(Box<str>, Value)>,
) -> NodeData {
    let f = Schema::facts(n);
    NodeData {
        object_shape: n.shape_of(false),
        list_shape: n.shape_of(true),
        fields,
        values,
        items,
        defaults,
        untyped_scalar: f.untyped_scalar,
        object: f.object,
        list: f.list,
        has_properties: f.has_properties,
        preserves_unknown: f.preserves_unknown,
        type_name: f.type_name.map(Box::from),
        format: f.format.map(Box::from),
    }
}

/// A node with nothing under it: no properties, map values or items (so no
/// `metadata` rule and no key defaults either).
fn is_leaf(n: &SchemaNode<'_>) -> bool {
    n.value.get("properties").is_none() && n.values().is_none() && n.items().is_none()
}

/// The nodes met so far, by the JSON they were reached at (so recursive
/// schemas terminate), and those not compiled yet. Leaves (most nodes:
/// strings, numbers, booleans) are shared by what they answer, which keeps
/// a kind's tree small.
struct Builder<'a> {
    ids: HashMap<*const Value, u32>,
    leaves: HashMap<String, u32>,
    queue: Vec<(usize, SchemaNode<'a>)>,
    nodes: Vec<Option<NodeData>>,
}

impl<'a> Builder<'a> {
    fn intern(&mut self, n: SchemaNode<'a>) -> u32 {
        let key = n.site as *const Value;
        if let Some(&i) = self.ids.get(&key) {
            return i;
        }
        if is_leaf(&n) {
            let data = node_data(&n, Vec::new(), None, None, Vec::new());
            // Every answer of a leaf is in its Debug form.
            let sig = format!("{data:?}");
            let next = self.nodes.len() as u32;
            let i = *self.leaves.entry(sig).or_insert(next);
            if i == next {
                self.nodes.push(Some(data));
            }
            self.ids.insert(key, i);
            return i;
        }
        let i = self.nodes.len();
        self.nodes.push(None);
        self.queue.push((i, n));
        self.ids.insert(key, i as u32);
        i as u32
    }
}

impl<'c> Node<'c> {
    fn data(&self) -> &'c NodeData {
        &self.tree.nodes[self.i as usize]
    }

    fn at(&self, i: u32) -> Node<'c> {
        Node { tree: self.tree, i }
    }
}

impl Schema for Node<'_> {
    fn shape_of(&self, list: bool) -> Shape {
        let d = self.data();
        if list {
            d.list_shape.clone()
        } else {
            d.object_shape.clone()
        }
    }

    fn field(&self, key: &str) -> Option<Self> {
        let d = self.data();
        match d.fields.binary_search_by(|(k, _, _)| (**k).cmp(key)) {
            Ok(i) => Some(self.at(d.fields[i].1)),
            Err(_) => d.values.map(|v| self.at(v)),
        }
    }

    fn is_named(&self, key: &str) -> bool {
        let d = self.data();
        d.fields
            .binary_search_by(|(k, _, _)| (**k).cmp(key))
            .is_ok_and(|i| d.fields[i].2)
    }

    fn items(&self) -> Option<Self> {
        self.data().items.map(|i| self.at(i))
    }

    fn key_default(&self, key: &str) -> Option<Value> {
        self.data()
            .defaults
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v.clone())
    }

    fn facts(&self) -> Facts<'_> {
        let d = self.data();
        Facts {
            untyped_scalar: d.untyped_scalar,
            object: d.object,
            list: d.list,
            has_properties: d.has_properties,
            preserves_unknown: d.preserves_unknown,
            type_name: d.type_name.as_deref(),
            format: d.format.as_deref(),
        }
    }
}

/// Compiled built-in kinds, by the address of their (static) definition.
static BUILTIN: LazyLock<RwLock<HashMap<usize, Arc<Compiled>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The compiled tree of a built-in kind's schema, compiled on first use.
pub fn builtin(root: SchemaNode<'static>) -> Arc<Compiled> {
    let key = root.site as *const Value as usize;
    if let Some(c) = BUILTIN.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return c.clone();
    }
    let c = Arc::new(Compiled::new(root));
    BUILTIN
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(c)
        .clone()
}
