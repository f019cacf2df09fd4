//! The schema language the message tables are written in.
//!
//! Protobuf bytes carry only field numbers, so decoding needs, for every
//! message, which number is which JSON field and of what type. The tables
//! (one file per API group) are plain `static`s built from the small
//! constructors below, so they read like the upstream `generated.proto`
//! files while staying our own code and needing no build step.
//!
//! Kubernetes' protos are proto2 with every field optional, written by Go
//! code that emits pointer fields only when set but value fields always, even
//! when zero. Go's JSON encoder drops the zero value of a value field tagged
//! `omitempty`, so to produce the JSON that the same object would have had as
//! JSON, each field states which of those it is ([`Card`]).

/// One protobuf message: its name (for error messages) and its fields.
#[derive(Debug)]
pub struct Msg {
    /// `group/version.Kind`, e.g. `apps/v1.DeploymentSpec`.
    pub name: &'static str,
    /// The known fields, in any order; a field number not listed is an error.
    pub fields: &'static [Field],
}

impl Msg {
    /// The field with this number, if the table knows it.
    pub fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The protobuf field number.
    pub tag: u32,
    /// The JSON name (empty for [`Card::Inline`]).
    pub json: &'static str,
    /// The type of the value, or of each element or map value.
    pub ty: Ty,
    /// Singular, repeated, map or inline, and how zero values are treated.
    pub card: Card,
}

/// How a field occurs and when it shows up in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// Singular; written to the JSON whenever it is on the wire, zero or not.
    /// For Go pointer fields (where zero is a real value, e.g. `replicas: 0`)
    /// and fields without `omitempty`.
    Opt,
    /// Singular Go value field tagged `omitempty`: Go sends it even when
    /// unset, so a zero scalar (`""`, `0`, `false`, no bytes) means unset and
    /// is left out of the JSON, as Go's own JSON encoder would.
    Omit,
    /// Repeated; packed and unpacked scalars are both accepted.
    Rep,
    /// `map<string, ty>`, on the wire a repeated entry message `{1: key, 2: value}`.
    Map,
    /// An embedded Go struct whose JSON fields are flattened into the parent
    /// but which protobuf carries as a nested message (e.g. `Volume.volumeSource`).
    Inline,
}

/// The type of a field's value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// `string`, as a JSON string (invalid UTF-8 is replaced, as Go's JSON does).
    String,
    /// `bytes`, as standard base64 with padding, like Go's `[]byte`.
    Bytes,
    /// `bool`.
    Bool,
    /// `int32`, as a JSON number.
    Int32,
    /// `int64`, as a JSON number.
    Int64,
    /// `resource.Quantity`: a message `{1: string}`, as a JSON string.
    Quantity,
    /// `intstr.IntOrString`: `{1: type, 2: intVal, 3: strVal}`, as a number or a string.
    IntOrString,
    /// `metav1.Time`: `{1: seconds, 2: nanos}`, as RFC 3339 in whole seconds.
    Time,
    /// `metav1.MicroTime`: like [`Ty::Time`] with six fractional digits.
    MicroTime,
    /// `runtime.RawExtension` or `metav1.FieldsV1`: `{1: bytes}` holding JSON.
    RawJson,
    /// A named `[]string` that protobuf wraps as `{1: repeated string}`
    /// (`ExtraValue`), as a JSON array.
    StringList,
    /// A nested message, as a JSON object.
    Message(&'static Msg),
}

impl Ty {
    /// Whether the value is a nested message on the wire (every type but
    /// the scalars), so that a repeated occurrence merges rather than replaces.
    pub fn is_message(self) -> bool {
        !matches!(
            self,
            Ty::String | Ty::Bytes | Ty::Bool | Ty::Int32 | Ty::Int64
        )
    }
}

/// Short names so that a table row fits on one line.
pub const STR: Ty = Ty::String;
/// See [`Ty::Bytes`].
pub const BYTES: Ty = Ty::Bytes;
/// See [`Ty::Bool`].
pub const BOOL: Ty = Ty::Bool;
/// See [`Ty::Int32`].
pub const I32: Ty = Ty::Int32;
/// See [`Ty::Int64`].
pub const I64: Ty = Ty::Int64;
/// See [`Ty::Quantity`].
pub const QTY: Ty = Ty::Quantity;
/// See [`Ty::IntOrString`].
pub const INT_OR_STR: Ty = Ty::IntOrString;
/// See [`Ty::Time`].
pub const TIME: Ty = Ty::Time;
/// See [`Ty::MicroTime`].
pub const MICRO_TIME: Ty = Ty::MicroTime;
/// See [`Ty::RawJson`].
pub const RAW_JSON: Ty = Ty::RawJson;
/// See [`Ty::StringList`].
pub const STR_LIST: Ty = Ty::StringList;

/// A nested message type.
pub const fn msg(m: &'static Msg) -> Ty {
    Ty::Message(m)
}

/// A singular field kept whenever present (see [`Card::Opt`]).
pub const fn opt(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        card: Card::Opt,
    }
}

/// A singular `omitempty` value field (see [`Card::Omit`]).
pub const fn omit(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        card: Card::Omit,
    }
}

/// A repeated field.
pub const fn rep(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        card: Card::Rep,
    }
}

/// A `map<string, ty>` field.
pub const fn map(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        card: Card::Map,
    }
}

/// An embedded message flattened into its parent's JSON (see [`Card::Inline`]).
pub const fn inline(tag: u32, ty: Ty) -> Field {
    Field {
        tag,
        json: "",
        ty,
        card: Card::Inline,
    }
}
