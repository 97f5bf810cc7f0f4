//! [`diff_definitions`]: which fields of a service definition changed.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// The dotted paths of the leaves that differ between two definitions, sorted:
/// `["env.LOG_LEVEL", "image", "resources.memory"]`.
///
/// Objects are compared key by key; a key present on one side only reports the
/// leaves under it (or the key itself when it holds an empty object or a
/// non-object). Arrays and other values are compared whole (`"args"`), as is an
/// object against a non-object. When the roots themselves differ and are not both
/// objects, the path is the empty string.
pub fn diff_definitions(old: &Value, new: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    diff("", Some(old), Some(new), &mut paths);
    paths.sort();
    paths.dedup();
    paths
}

fn diff(path: &str, old: Option<&Value>, new: Option<&Value>, paths: &mut Vec<String>) {
    match (old, new) {
        (Some(Value::Object(old)), Some(Value::Object(new))) => {
            let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for key in keys {
                diff(&join(path, key), old.get(key), new.get(key), paths);
            }
        }
        (Some(Value::Object(one)), None) | (None, Some(Value::Object(one))) => {
            leaves(path, one, paths);
        }
        (old, new) if old == new => {}
        _ => paths.push(path.to_string()),
    }
}

/// Every leaf under `object`, as present on one side only.
fn leaves(path: &str, object: &Map<String, Value>, paths: &mut Vec<String>) {
    if object.is_empty() {
        paths.push(path.to_string());
    }
    for (key, value) in object {
        match value {
            Value::Object(inner) => leaves(&join(path, key), inner, paths),
            _ => paths.push(join(path, key)),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        path => format!("{path}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_definitions_have_no_changes() {
        let def = json!({"image": "web:1", "env": {"A": "1"}, "args": ["-v"]});
        assert!(diff_definitions(&def, &def.clone()).is_empty());
    }

    #[test]
    fn changed_leaves_are_dotted_and_sorted() {
        let old = json!({
            "image": "web:1",
            "env": {"LOG_LEVEL": "info", "PORT": "80"},
            "resources": {"memory": "128M", "cpus": 1},
        });
        let new = json!({
            "image": "web:2",
            "env": {"LOG_LEVEL": "debug", "PORT": "80"},
            "resources": {"memory": "256M", "cpus": 1},
        });
        assert_eq!(
            diff_definitions(&old, &new),
            vec!["env.LOG_LEVEL", "image", "resources.memory"]
        );
    }

    #[test]
    fn arrays_are_compared_whole() {
        let old = json!({"args": ["a", "b"], "ports": [{"port": 80}]});
        let new = json!({"args": ["a", "c"], "ports": [{"port": 80}]});
        assert_eq!(diff_definitions(&old, &new), vec!["args"]);
    }

    #[test]
    fn added_and_removed_keys_report_their_leaves() {
        let old = json!({"env": {"A": "1"}, "user": "web"});
        let new = json!({"env": {"B": "2"}, "limits": {"nofile": 1024, "cpu": {"max": 2}}});
        assert_eq!(
            diff_definitions(&old, &new),
            vec!["env.A", "env.B", "limits.cpu.max", "limits.nofile", "user"]
        );
    }

    #[test]
    fn an_added_empty_object_reports_its_key() {
        let old = json!({"image": "web:1"});
        let new = json!({"image": "web:1", "env": {}});
        assert_eq!(diff_definitions(&old, &new), vec!["env"]);
    }

    #[test]
    fn an_object_replaced_by_a_value_reports_the_key() {
        let old = json!({"healthcheck": {"path": "/"}});
        let new = json!({"healthcheck": null});
        assert_eq!(diff_definitions(&old, &new), vec!["healthcheck"]);
    }

    #[test]
    fn a_changed_type_of_leaf_is_a_change() {
        let old = json!({"replicas": 1});
        let new = json!({"replicas": "1"});
        assert_eq!(diff_definitions(&old, &new), vec!["replicas"]);
    }

    #[test]
    fn differing_non_object_roots_report_the_empty_path() {
        assert_eq!(diff_definitions(&json!(1), &json!(2)), vec![""]);
    }
}
