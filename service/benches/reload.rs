//! `make bench`: how fast a changed keyring reaches requests. The kubelet updates a mounted Secret
//! by writing a new timestamped directory and renaming a `..data` symlink over the old one; this
//! bench does exactly that in a temp directory, then sends requests with the new API key through
//! the full router (no sockets) until the first one is accepted. The figure is the time from the
//! rename to that first accepted request, for the workload's reload (change notifications, with
//! the 2 s poll as fallback) and, as the baseline measured in the same run, the 2 s poll alone
//! (what the workload did before it watched the directory). Goal: under 1 s, every time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailagent_service::app::App;
use mailagent_service::reload::{self, INTERVAL};
use mailagent_service::testing::{kubelet_publish, post, send, source_from};
use serde_json::json;
use sha2::Digest;

const NOTIFIED_SAMPLES: usize = 20;
const POLL_SAMPLES: usize = 8;
const GOAL: Duration = Duration::from_secs(1);

fn keyring(n: usize) -> serde_json::Value {
    json!({"schema": 1, "revision": n, "apiKeys": [{"kid": format!("ak-{n}"), "client": "bench",
        "sha256": hex::encode(sha2::Sha256::digest(key(n).as_bytes())), "scopes": ["mail:scan"], "state": "Active"}]})
}

fn key(n: usize) -> String {
    format!("mak_bench-key-{n:04}-{}", "x".repeat(32))
}

async fn accepted(app: &Arc<App>, key: &str) -> bool {
    send(app, post("/v1/mail/scan", &[("x-api-key", key)], json!({}))).await.0 == 200
}

/// Milliseconds from each swap to the first accepted request, sorted.
async fn measure(notified: bool, samples: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    kubelet_publish(dir.path(), 0, &keyring(0));
    let source = source_from(&[
        ("AUTH_MODE", "api_key"),
        ("MAILAGENT_KEYRING_DIR", dir.path().to_str().unwrap()),
        ("RATE_LIMIT_PER_MINUTE", "10000000"),
        ("RATE_LIMIT_BURST", "1000000"),
    ]);
    let assistant = Arc::new(mailagent_service::testing::CannedAssistant);
    let (app, digest) = mailagent_service::server::build(&source, Some(assistant)).unwrap();
    let task = if notified {
        tokio::spawn(reload::watch_polling_every(app.clone(), source, digest, INTERVAL))
    } else {
        tokio::spawn(reload::poll_only(app.clone(), source, digest, INTERVAL))
    };
    assert!(accepted(&app, &key(0)).await);
    let mut out = Vec::with_capacity(samples);
    for n in 1..=samples {
        // Swaps land at unrelated moments of the poll period, as a kubelet's do.
        tokio::time::sleep(Duration::from_millis(137 * n as u64 % 1000)).await;
        kubelet_publish(dir.path(), n as u32, &keyring(n));
        let swapped = Instant::now();
        while !accepted(&app, &key(n)).await {
            assert!(swapped.elapsed() < 3 * INTERVAL, "the new keyring was never seen");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        out.push(swapped.elapsed());
    }
    task.abort();
    out.sort_unstable();
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let notified = measure(true, NOTIFIED_SAMPLES).await;
    let polled = measure(false, POLL_SAMPLES).await;
    let median = |v: &[Duration]| v[v.len() / 2];
    let max = |v: &[Duration]| *v.last().unwrap();
    println!("keyring reload, swap of ..data to the first request accepted with the new key:");
    println!(
        "  notified reload  median {:7.1} ms  max {:7.1} ms  ({} swaps)",
        ms(median(&notified)),
        ms(max(&notified)),
        notified.len()
    );
    println!(
        "  2 s poll alone   median {:7.1} ms  max {:7.1} ms  ({} swaps, baseline)",
        ms(median(&polled)),
        ms(max(&polled)),
        polled.len()
    );
    println!(
        "  ratio to baseline: median {:.3}, max {:.3}; goal under {} ms every time: {}",
        ms(median(&notified)) / ms(median(&polled)),
        ms(max(&notified)) / ms(max(&polled)),
        GOAL.as_millis(),
        if max(&notified) < GOAL { "met" } else { "NOT met" }
    );
}
