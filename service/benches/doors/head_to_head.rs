//! 5. The head-to-head a user would run: the release `mailagent` binary as the images ship it
//!    (`make bench` builds it with hack/pgo-build.sh and passes it in `MAILAGENT_BENCH_BINARY`)
//!    against the official MCP Python SDK server (`hack/bench/mcp_python_server.py`, the SDK pinned
//!    in `hack/peers/service/requirements.txt`), both on a copy of the sample Maildir, both
//!    answering `unsubscribe_candidates`, driven by the same load generator (one thread, 16
//!    connections, as `wrk -t1 -c16`) in the same rounds. Auth is on for us (a JWT on every call)
//!    and off for it. `make bench` passes the venv's python in `MAILAGENT_BENCH_PYTHON`; without it
//!    this part is skipped.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailagent_service::testing::{self, KillOnDrop};

use super::{
    CONNECTIONS, Figure, MIB, anonymous_bytes, mcp_stateless_tool, mcp_tool, open_session, resident_bytes, rounds,
};

const TOOL: &str = "unsubscribe_candidates";

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn wait_for(addr: SocketAddr, what: &str, child: &mut KillOnDrop) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(child.0.try_wait().unwrap().is_none(), "{what} exited before it listened");
        assert!(started.elapsed() < Duration::from_secs(30), "{what} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(bearer: &str) {
    let Ok(python) = std::env::var("MAILAGENT_BENCH_PYTHON") else {
        println!(
            "\nHead-to-head with the MCP Python SDK: skipped (MAILAGENT_BENCH_PYTHON unset; `make bench` sets it)"
        );
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (binary, built) = super::workload_binary();
    // Its log goes to /dev/null, as the Python server's does: an audit line per call written to a
    // file would be work the other side does not do. So the port is chosen here, not read back.
    let ours_addr = free_addr();
    let mut ours = KillOnDrop(
        testing::workload_command(&binary, work.path())
            .envs(testing::LOAD_ENV)
            .env("MAILAGENT_LISTEN", ours_addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the mailagent binary"),
    );
    let python_addr = free_addr();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../hack/bench/mcp_python_server.py");
    let mut theirs = KillOnDrop(
        Command::new(&python)
            .arg(script)
            .arg(python_addr.port().to_string())
            .env("MAILDIR_PATH", work.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the MCP Python SDK server"),
    );
    wait_for(ours_addr, "mailagent", &mut ours).await;
    wait_for(python_addr, "the MCP Python SDK server", &mut theirs).await;

    let ours_many = mcp_tool(bearer, "", TOOL);
    let ours_one = mcp_tool(bearer, &open_session(ours_addr, bearer).await, TOOL);
    let ours_stateless = mcp_stateless_tool(bearer, TOOL);
    let theirs_many = mcp_tool("", "", TOOL);
    let theirs_one = mcp_tool("", &open_session(python_addr, "").await, TOOL);
    let contenders = [
        ("Python SDK, 16 sessions", python_addr, &theirs_many, CONNECTIONS),
        ("Python SDK, 1 session, 16 in flight", python_addr, &theirs_one, CONNECTIONS),
        ("mailagent, JWT, 16 sessions", ours_addr, &ours_many, CONNECTIONS),
        ("mailagent, JWT, 1 session, 16 in flight", ours_addr, &ours_one, CONNECTIONS),
        ("mailagent, JWT, 2026-07-28", ours_addr, &ours_stateless, CONNECTIONS),
    ];
    // The load generator runs on one thread of its own, as `wrk -t1 -c16` would. On the bench's two
    // workers it spent 0.47 of a core at 18k req/s, much of it waking the other worker; that is CPU
    // the server under test, on the same 2 cores, did not get. The Python server uses one core.
    let best = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let generator = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    generator.block_on(rounds(&contenders))
                })
                .join()
                .unwrap()
        })
    });
    let (ours_rss, ours_peak) = resident_bytes(ours.0.id());
    let (theirs_rss, theirs_peak) = resident_bytes(theirs.0.id());
    let (ours_anon, theirs_anon) = (anonymous_bytes(ours.0.id()), anonymous_bytes(theirs.0.id()));

    println!(
        "\nHead-to-head, `{TOOL}` on the sample Maildir: the release binary (auth on: JWT) against the official MCP Python SDK 2.3.0 server (auth off), same load generator, same rounds:"
    );
    println!("  our binary: {} ({built})", binary.display());
    for (i, (name, ..)) in contenders.iter().enumerate() {
        println!("  {name:<34} {:>9.0} req/s  p50 {:>9.1?}  p99 {:>9.1?}", best[i].rate, best[i].p50, best[i].p99);
    }
    let compare = |name: &str, ours: Figure, theirs: Figure| {
        println!(
            "  {name:<34} throughput {:>6.1}x theirs (goal >= 30x)   p99 {:>6.1}x lower",
            ours.rate / theirs.rate,
            theirs.p99.as_secs_f64() / ours.p99.as_secs_f64()
        );
    };
    compare("16 sessions", best[2], best[0]);
    compare("1 session, 16 in flight", best[3], best[1]);
    compare("2026-07-28 vs their 16 sessions", best[4], best[0]);
    println!(
        "  resident memory after load: ours {:.1} MiB, theirs {:.1} MiB, {:.3} of theirs (goal <= 0.100); peak ours {:.1} MiB, theirs {:.1} MiB",
        ours_rss / MIB,
        theirs_rss / MIB,
        ours_rss / theirs_rss,
        ours_peak / MIB,
        theirs_peak / MIB
    );
    println!(
        "  of which anonymous (heap, stacks, relocated data; code and libraries are page cache shared by every pod of an image on a node): ours {:.1} MiB, theirs {:.1} MiB, {:.3} of theirs",
        ours_anon / MIB,
        theirs_anon / MIB,
        ours_anon / theirs_anon
    );
}
