//! API errors, each rendered as a `metav1.Status` with the upstream reason and code.

use serde_json::{json, Value};

/// What kind of problem a field has; the names are upstream's `CauseType`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    /// `FieldValueRequired`
    Required,
    /// `FieldValueInvalid`
    Invalid,
    /// `FieldValueDuplicate`
    Duplicate,
    /// `FieldValueNotSupported`
    NotSupported,
    /// `FieldValueForbidden`
    Forbidden,
    /// `FieldValueTooLong`
    TooLong,
    /// `FieldValueTooMany`
    TooMany,
    /// `FieldValueTypeInvalid`
    TypeInvalid,
    /// `FieldValueNotFound`
    NotFound,
}

impl FieldErrorType {
    /// The `reason` of a `StatusCause`.
    pub fn cause_type(self) -> &'static str {
        match self {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorType::NotFound => "FieldValueNotFound",
        }
    }

    /// How upstream words the type in messages.
    fn phrase(self) -> &'static str {
        match self {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::TypeInvalid => "Invalid value",
            FieldErrorType::NotFound => "Not found",
        }
    }
}

/// One problem with one field, as upstream's `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field path, e.g. `spec.containers[0].image` or `metadata.labels`.
    pub field: String,
    /// The kind of problem.
    pub kind: FieldErrorType,
    /// The offending value, when there is one to show.
    pub value: Option<Value>,
    /// Human-readable detail.
    pub detail: String,
}

impl FieldError {
    /// A required field is missing.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorType::Required,
            value: None,
            detail: detail.into(),
        }
    }

    /// A field has a bad value.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorType::Invalid,
            value: Some(value.into()),
            detail: detail.into(),
        }
    }

    /// A value appears twice where it must be unique.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorType::Duplicate,
            value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// A value outside the supported set; `supported` is listed in the detail.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        FieldError {
            field: field.into(),
            kind: FieldErrorType::NotSupported,
            value: Some(value.into()),
            detail: format!("supported values: {list}"),
        }
    }

    /// The field may not be set or changed.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorType::Forbidden,
            value: None,
            detail: detail.into(),
        }
    }

    /// A value longer than allowed.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorType::TooLong,
            value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    /// The message upstream prints for this error: the field, then [`Self::body`].
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }

    /// The message without the field, as a `StatusCause` carries it.
    pub fn body(&self) -> String {
        let mut m = self.kind.phrase().to_string();
        if let Some(v) = &self.value {
            if !matches!(
                self.kind,
                FieldErrorType::Required | FieldErrorType::Forbidden | FieldErrorType::TooLong
            ) {
                let shown = match v {
                    Value::String(s) => format!("\"{s}\""),
                    other => other.to_string(),
                };
                m.push_str(&format!(": {shown}"));
            }
        }
        if !self.detail.is_empty() {
            m.push_str(&format!(": {}", self.detail));
        }
        m
    }
}

/// An error the API returns: it becomes a `metav1.Status` body with `code`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `metav1.StatusReason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `metav1.StatusDetails`, if any.
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

/// Result with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

/// The group and resource an error is about, e.g. `("apps", "deployments")`.
#[derive(Clone, Copy, Debug)]
pub struct GroupResource<'a> {
    /// API group; empty for the core group.
    pub group: &'a str,
    /// Plural resource name.
    pub resource: &'a str,
}

impl GroupResource<'_> {
    /// `deployments.apps`, or `pods` for the core group, as upstream prints it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self, name: &str) -> Value {
        let mut d = json!({ "name": name, "kind": self.resource });
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 404 for a named object.
    pub fn not_found(gr: GroupResource<'_>, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", gr.qualified(), name),
        );
        e.details = Some(gr.details(name));
        e
    }

    /// 404 for a path that names nothing we serve.
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 on create of an existing name.
    pub fn already_exists(gr: GroupResource<'_>, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", gr.qualified(), name),
        );
        e.details = Some(gr.details(name));
        e
    }

    /// 409 on a stale `resourceVersion` or a failed precondition.
    pub fn conflict(gr: GroupResource<'_>, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                gr.qualified(),
                name,
                why
            ),
        );
        e.details = Some(gr.details(name));
        e
    }

    /// 422 with one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let msgs: Vec<String> = errors.iter().map(FieldError::message).collect();
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = if msgs.len() == 1 {
            format!("{qualified} \"{name}\" is invalid: {}", msgs[0])
        } else {
            format!("{qualified} \"{name}\" is invalid: [{}]", msgs.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|fe| json!({ "reason": fe.kind.cause_type(), "message": fe.body(), "field": fe.field }))
            .collect();
        let mut details = json!({ "name": name, "kind": kind, "causes": causes });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        let mut e = Self::new(422, "Invalid", message);
        e.details = Some(details);
        e
    }

    /// 422 in upstream's generic words, with empty details: what its
    /// `NewGenericServerResponse` gives a patch that cannot be applied (a
    /// failed JSON patch operation, a list of lists in a strategic merge).
    /// The cause itself is not told; kubectl prints "The request is
    /// invalid: the server rejected our request due to an error in our
    /// request".
    pub fn rejected() -> Self {
        let mut e = Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        );
        e.details = Some(json!({}));
        e
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 410, e.g. a watch or continue token older than the retained history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 406.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 415.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json (got {content_type:?})"))
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(429, "TooManyRequests", message);
        e.retry_after = Some(retry_after);
        e.details = Some(json!({ "retryAfterSeconds": retry_after }));
        e
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 504, e.g. a consistent read that could not catch up in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // `reason` is `omitempty` upstream: an error of no known reason
        // (e.g. the proxy's dial error) has none.
        if self.reason.is_empty() {
            if let Some(m) = s.as_object_mut() {
                m.remove("reason");
            }
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_reason_is_left_out() {
        let s = ApiError::new(500, "", "error dialing backend: x").to_status();
        assert!(s.get("reason").is_none(), "{s}");
        assert_eq!(s["code"], 500);
        assert_eq!(
            ApiError::new(404, "NotFound", "x").to_status()["reason"],
            "NotFound"
        );
    }

    #[test]
    fn invalid_lists_each_field() {
        let e = ApiError::invalid(
            "apps",
            "Deployment",
            "web",
            &[
                FieldError::required("spec.template.spec.containers[0].image", ""),
                FieldError::invalid("metadata.name", "Web", "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"),
            ],
        );
        assert_eq!(e.code, 422);
        let s = e.to_status();
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["details"]["causes"][0]["field"],
            "spec.template.spec.containers[0].image"
        );
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert!(
            e.message
                .starts_with("Deployment.apps \"web\" is invalid: ["),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("metadata.name: Invalid value: \"Web\": a lowercase"),
            "{}",
            e.message
        );
    }

    #[test]
    fn not_found_names_the_resource() {
        let e = ApiError::not_found(
            GroupResource {
                group: "",
                resource: "pods",
            },
            "x",
        );
        assert_eq!(e.message, "pods \"x\" not found");
        assert_eq!(e.to_status()["details"]["kind"], "pods");
    }
}
