//! The committed CRD reference must be what the schema generates: a field's doc changed without
//! `make generate` fails here instead of leaving the docs behind the API.

use std::path::PathBuf;

/// Fails unless `docs/reference/NAME` is exactly `generated`.
fn assert_committed(name: &str, generated: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/reference").join(name);
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make generate`", path.display()));
    assert!(committed == generated, "{} is stale; run `make generate` and commit the result", path.display());
}

#[test]
fn committed_crd_reference_matches_the_schema() {
    assert_committed("crds.md", mailagent_crds::reference::markdown());
}

/// The same for the settings: a doc comment in `contract::env` changed, or a setting added,
/// without `make generate` fails here.
#[test]
fn committed_settings_reference_matches_the_contract() {
    assert_committed("settings.md", mailagent_crds::settings_reference::markdown());
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
