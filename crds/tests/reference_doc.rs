//! The committed CRD reference must be what the schema generates: a field's doc changed without
//! `make generate` fails here instead of leaving the docs behind the API.

use std::path::PathBuf;

#[test]
fn committed_crd_reference_matches_the_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/reference/crds.md");
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make generate`", path.display()));
    assert!(
        committed == mailagent_crds::reference::markdown(),
        "{} is stale; run `make generate` and commit the result",
        path.display()
    );
}

#[test]
fn the_reference_lists_every_field_with_its_doc_and_rules() {
    let doc = mailagent_crds::reference::markdown();
    for needle in [
        "## MailAgent",
        "## AuthPolicy",
        "| `spec.mcp.enableMutationTools` | boolean |",
        "| `spec.rateLimit.perMinute` |",
        "metadata.name may be at most 58 characters",
        "*Admission:*",
    ] {
        assert!(doc.contains(needle), "the reference lacks {needle:?}");
    }
}
