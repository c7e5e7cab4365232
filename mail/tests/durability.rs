//! kill -9 at random points during state writes: after each kill the file loads and holds every
//! write the child acknowledged (printed only after `update` returned, i.e. after the rename and
//! the directory fsync).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use mailagent_mail::records::{SentLink, SentLinks};
use mailagent_mail::state::{StateFile, load_document};

const CHILD_ENV: &str = "MAILAGENT_DURABILITY_CHILD";
const TOTAL_ACKED: usize = 1_000;

/// The child: writes entries forever, acknowledging each on stdout once durable.
#[test]
fn durability_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    runtime.block_on(async {
        let file = StateFile::new(path.into());
        let start = file.load::<SentLinks>().unwrap().links.len();
        for i in start.. {
            let key = format!("entry-{i:06}");
            file.update(|doc: &mut SentLinks| {
                doc.schema = SentLinks::SCHEMA_VERSION;
                doc.links
                    .insert(key.clone(), SentLink { candidate: key.clone(), method: None, outcome: None, at: None });
            })
            .await
            .unwrap();
            println!("ack {key}");
        }
    });
}

fn acked_survive(path: &Path, acked: &[String]) {
    let doc: SentLinks = load_document(path).expect("state file loads after kill -9");
    for key in acked {
        assert!(doc.links.contains_key(key), "acknowledged {key} lost");
    }
}

#[test]
fn kill_nine_never_loses_an_acknowledged_write() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/sent_unsubscribe_links.json");
    let mut acked: Vec<String> = Vec::new();
    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    while acked.len() < TOTAL_ACKED {
        // Kill after a pseudo-random number of acknowledgements (1..=40), mid-write most times.
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let kill_after = 1 + (seed >> 33) as usize % 40;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "durability_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        for line in stdout.lines() {
            let Some(key) = line.unwrap().strip_prefix("ack ").map(str::to_string) else { continue };
            acked.push(key);
            seen += 1;
            if seen == kill_after {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        child.wait().unwrap();
        kills += 1;
        acked_survive(&path, &acked);
    }
    let leftovers = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".tmp-"))
        .count();
    eprintln!("{} acknowledged writes over {kills} kills; {leftovers} orphaned temp files", acked.len());
    // The next writer clears what killed writers left behind.
    let file = StateFile::new(path.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    runtime.block_on(file.update(|_: &mut SentLinks| ())).unwrap();
    let after = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".tmp-"))
        .count();
    assert_eq!(after, 0, "orphaned temporary files survived the next write");
    acked_survive(&path, &acked);
}
