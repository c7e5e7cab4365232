//! The PGO training driver (`hack/pgo/train.py`, run by `hack/pgo-build.sh`) still drives the
//! real API. The release build trains its profile with that script, and a script that no longer
//! matches the doors (a renamed route, tool or scope, a changed MCP header) would fail the build
//! at its slowest step, or worse, train on refusals. So it runs here for a few seconds against the
//! debug `mailagent` binary, configured as the PGO build runs it (hybrid auth, the sample
//! Maildir), and every door must have been driven; and its table of capabilities must match the
//! workload's. Neither side prints the secrets: the trainer gets them in its environment and
//! reports only counts and answers.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{API_KEY, AUDIENCE, ISSUER, JWT_SECRET};
use mailagent_service::capability::Capability;

/// The doors the summary line must show driven (a count above zero).
const DOORS: [&str; 4] = ["rest", "mcp-2025-06-18", "mcp-2026-07-28", "a2a"];

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/pgo/train.py")
}

/// The capability table drives every door, so the trainer's own table must follow it: a new
/// read-only capability left out would be missing from the profile, and a mutation let in would
/// have the build contact senders or send mail.
#[test]
fn the_trainer_calls_every_read_only_capability_and_no_mutation() {
    let source = std::fs::read_to_string(script()).unwrap();
    for capability in Capability::ALL {
        let (name, path, scope) = (capability.name(), capability.path(), capability.scope().as_str());
        if capability.is_mutation() {
            for quoted in [format!("\"{name}\""), format!("\"{path}\"")] {
                assert!(!source.contains(&quoted), "the trainer names the mutation {quoted}");
            }
            assert!(!source.contains(scope), "the trainer's token asks for the mutation scope {scope}");
        } else {
            assert!(
                source.contains(&format!("(\"{name}\", \"{path}\", [")),
                "the trainer's CAPABILITIES has no entry for {name} at {path}"
            );
            assert!(source.contains(scope), "the trainer's token lacks the scope {scope} that {name} needs");
        }
    }
}

/// The workload's last lines, for a failure message (the log names no key).
fn log_tail(dir: &Path) -> String {
    let log = common::workload_log(dir);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The count after `door ` in the trainer's summary line, if the line names the door.
fn count(summary: &str, door: &str) -> Option<u64> {
    let (_, rest) = summary.split_once(&format!(" {door} "))?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// A short training run against the debug binary: the trainer exits 0 only if every answer was
/// the expected one, and its summary must show REST, both MCP revisions and A2A driven.
#[test]
fn the_pgo_trainer_drives_every_door_of_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let mut workload = common::spawn_logged(
        common::workload_command(env!("CARGO_BIN_EXE_mailagent"), dir.path()).envs(common::LOAD_ENV),
        dir.path(),
    );
    let address = common::serving_address(dir.path(), &mut workload);

    // The secrets go in the environment only (never argv), and the trainer's environment holds
    // nothing else but PATH, so what it does depends on its arguments alone.
    let trainer = Command::new("python3")
        .arg(script())
        .args(["--base-url", &format!("http://{address}"), "--issuer", ISSUER, "--audience", AUDIENCE])
        .args(["--seconds", "3", "--threads", "4"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MAILAGENT_TRAIN_API_KEY", API_KEY)
        .env("MAILAGENT_TRAIN_JWT_SECRET", JWT_SECRET)
        .stdin(Stdio::null())
        .output()
        .expect("run python3 (the PGO trainer needs a Python 3 on PATH)");
    let stdout = String::from_utf8_lossy(&trainer.stdout);
    let stderr = String::from_utf8_lossy(&trainer.stderr);
    assert!(
        trainer.status.success(),
        "the trainer failed ({}):\n{stdout}{stderr}\nworkload log (last lines):\n{}",
        trainer.status,
        log_tail(dir.path())
    );
    let summary = stdout.lines().find(|line| line.starts_with("train: ")).unwrap_or_else(|| {
        panic!("no summary line in the trainer's output:\n{stdout}{stderr}");
    });
    for door in DOORS {
        let driven = count(summary, door).unwrap_or_else(|| panic!("the summary names no {door}: {summary}"));
        assert!(driven > 0, "the trainer drove no {door} requests: {summary}");
    }
    for door in ["card", "ops", "rejected"] {
        assert!(count(summary, door).is_some(), "the summary names no {door}: {summary}");
    }
    println!("{summary}");
}
