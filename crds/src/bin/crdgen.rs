//! Generates the CRD YAML from the types.
//!
//! `crdgen` prints every CRD as one multi-document stream (for `kubectl apply -f -`);
//! `crdgen DIR...` writes one file per CRD into each directory (`make generate` passes
//! `crds/yaml` and the chart's `crds/`); `crdgen --reference FILE` writes the Markdown CRD
//! reference and `crdgen --settings FILE` the workload's settings reference. A test fails when
//! the committed files drift.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let mut dirs: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = dirs.iter().position(|a| a == "--reference") {
        let file = dirs.get(at + 1).cloned().expect("--reference needs a file");
        std::fs::write(file, mailagent_crds::reference::markdown())?;
        dirs.drain(at..=at + 1);
    }
    if let Some(at) = dirs.iter().position(|a| a == "--settings") {
        let file = dirs.get(at + 1).cloned().expect("--settings needs a file");
        std::fs::write(file, mailagent_crds::settings_reference::markdown())?;
        dirs.drain(at..=at + 1);
    }
    if dirs.is_empty() {
        print!("{}", mailagent_crds::crds_yaml());
        return Ok(());
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir)?;
        for (name, yaml) in mailagent_crds::crd_files() {
            std::fs::write(Path::new(&dir).join(name), yaml)?;
        }
    }
    Ok(())
}
