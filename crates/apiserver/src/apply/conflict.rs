//! Apply conflicts: fields another manager owns and an applier would change.

use serde_json::json;

use super::managed::ManagerId;
use super::path::display;
use super::set::Set;
use crate::error::ApiError;

/// The conflicting fields of each manager.
pub type Conflicts = Vec<(ManagerId, Set)>;

/// The 409 upstream returns: one `FieldManagerConflict` cause per field,
/// and a message listing them by manager.
pub fn conflict_error(conflicts: &Conflicts) -> ApiError {
    let mut by_manager: Vec<(&ManagerId, Vec<String>)> = conflicts
        .iter()
        .map(|(m, set)| (m, set.paths().iter().map(|p| display(p)).collect()))
        .filter(|(_, paths): &(&ManagerId, Vec<String>)| !paths.is_empty())
        .collect();
    by_manager.sort_by_cached_key(|(m, _)| m.identifier());
    let total: usize = by_manager.iter().map(|(_, p)| p.len()).sum();
    let causes: Vec<_> = by_manager
        .iter()
        .flat_map(|(m, paths)| {
            paths.iter().map(move |p| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {}", m.describe()),
                    "field": p,
                })
            })
        })
        .collect();
    let message = if total == 1 {
        let (m, paths) = &by_manager[0];
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            m.describe(),
            paths[0]
        )
    } else {
        let mut lines = Vec::new();
        for (m, paths) in &by_manager {
            lines.push(format!("conflicts with {}:", m.describe()));
            lines.extend(paths.iter().map(|p| format!("- {p}")));
        }
        format!("Apply failed with {total} conflicts: {}", lines.join("\n"))
    };
    ApiError {
        code: 409,
        reason: "Conflict",
        message,
        details: Some(json!({ "causes": causes })),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::managed::Operation;
    use super::super::path::PathElement;
    use super::*;

    fn set(paths: &[&[&str]]) -> Set {
        let ps: Vec<Vec<PathElement>> = paths
            .iter()
            .map(|p| p.iter().map(|s| PathElement::field(s)).collect())
            .collect();
        Set::from_paths(ps.iter().map(Vec::as_slice))
    }

    #[test]
    fn one_conflict() {
        let e = conflict_error(&vec![(
            ManagerId::new("kubectl-scale", Operation::Update, "apps/v1", "scale"),
            set(&[&["spec", "replicas"]]),
        )]);
        assert_eq!(e.code, 409);
        assert_eq!(e.reason, "Conflict");
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" with subresource \"scale\" using apps/v1: .spec.replicas"
        );
        let s = e.to_status();
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldManagerConflict");
        assert_eq!(s["details"]["causes"][0]["field"], ".spec.replicas");
        assert_eq!(
            s["details"]["causes"][0]["message"],
            "conflict with \"kubectl-scale\" with subresource \"scale\" using apps/v1"
        );
    }

    #[test]
    fn several_conflicts_grouped_by_manager() {
        let e = conflict_error(&vec![
            (
                ManagerId::new("zeta", Operation::Apply, "v1", ""),
                set(&[&["data", "a"]]),
            ),
            (
                ManagerId::new("alpha", Operation::Update, "v1", ""),
                set(&[&["data", "b"], &["data", "c"]]),
            ),
        ]);
        assert_eq!(
            e.message,
            "Apply failed with 3 conflicts: conflicts with \"alpha\" using v1:\n- .data.b\n- .data.c\nconflicts with \"zeta\":\n- .data.a"
        );
        assert_eq!(e.details.unwrap()["causes"].as_array().unwrap().len(), 3);
    }
}
