//! The committed CRD YAML must be exactly what the types generate: a change to a type without
//! `make generate` fails here instead of shipping a CRD that disagrees with the code.

use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("crds/ has a parent").to_path_buf()
}

#[test]
fn committed_crd_yaml_matches_the_types() {
    for dir in ["crds/yaml", "charts/mailagent-operator/crds"] {
        for (name, expected) in mailagent_crds::crd_files() {
            let path = repo_root().join(dir).join(&name);
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; run `make generate`", path.display()));
            assert!(committed == expected, "{} is stale; run `make generate` and commit the result", path.display());
        }
    }
}

#[test]
fn every_crd_has_status_short_names_and_the_category() {
    for crd in mailagent_crds::crds() {
        let names = &crd.spec.names;
        assert_eq!(names.categories.as_deref(), Some(&["mail".to_owned()][..]));
        assert!(names.short_names.as_ref().is_some_and(|s| !s.is_empty()), "{} lacks a short name", names.kind);
        let version = &crd.spec.versions[0];
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
        assert!(version.additional_printer_columns.as_ref().is_some_and(|c| c.iter().any(|c| c.name == "Ready")));
    }
}

/// Issue 8, defect 2: kubectl expands a category before it looks up a resource, so a category
/// spelled like any kind's name makes `kubectl get <that name> NAME` refuse to run.
#[test]
fn no_category_is_spelled_like_a_resource() {
    let crds = mailagent_crds::crds();
    let spellings: Vec<String> = crds
        .iter()
        .flat_map(|crd| {
            let n = &crd.spec.names;
            let mut all = vec![n.plural.clone(), n.kind.to_lowercase()];
            all.extend(n.singular.clone());
            all.extend(n.short_names.clone().unwrap_or_default());
            all
        })
        .collect();
    for crd in &crds {
        for category in crd.spec.names.categories.iter().flatten() {
            assert!(!spellings.contains(category), "category {category:?} is also a resource name");
        }
    }
}

#[test]
fn every_schema_property_is_documented() {
    // `kubectl explain` shows these descriptions; an undocumented field teaches nothing.
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
            return;
        };
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            // Embedded Kubernetes types (NetworkPolicyPeer, ResourceRequirements, Condition) carry upstream docs.
            if prop.get("description").is_none() && !path.contains("network") && !here.ends_with(".metadata") {
                missing.push(here.clone());
            }
            walk(&here, prop, missing);
            if let Some(items) = prop.get("items") {
                walk(&format!("{here}[]"), items, missing);
            }
        }
    }
    for crd in mailagent_crds::crds() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let root = &schema["openAPIV3Schema"];
        let mut missing = Vec::new();
        for part in ["spec", "status"] {
            walk(part, &root["properties"][part], &mut missing);
        }
        missing.retain(|m| !m.starts_with("status.conditions[]") && !m.contains(".resources."));
        assert!(missing.is_empty(), "{}: undocumented fields {missing:?}", crd.spec.names.kind);
    }
}
