//! Child processes (etcd, kube-apiserver, ...) that never outlive the test binary, and starting
//! them again on new ports when a port chosen for them was taken first.
//!
//! A shared control plane lives in a `static`, which Rust never drops, so each server runs under
//! a tiny shell watchdog that stops it as soon as the process that started it is gone. (The
//! alternative, `PR_SET_PDEATHSIG`, needs `unsafe`, which this workspace forbids.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `"$@"` and stops it when the watched process (`WATCH_PID`) is gone or the watchdog gets
/// SIGTERM. A server gets a few seconds to exit on SIGTERM, then SIGKILL: kube-apiserver can hang
/// in its graceful shutdown once etcd is gone, and a test server has nothing worth saving.
const WATCHDOG: &str = r#"
"$@" &
child=$!
stop() {
  kill -TERM "$child" 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    kill -0 "$child" 2>/dev/null || exit 0
    sleep 0.25
  done
  kill -KILL "$child" 2>/dev/null
  wait "$child"
  exit 0
}
trap stop TERM INT
while kill -0 "$WATCH_PID" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
stop
"#;

/// A running server whose output goes to a log file.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// What was started, so [`Process::restart`] can start it again the same way.
    program: PathBuf,
    args: Vec<String>,
}

impl Process {
    /// Starts `program args` under the watchdog, logging to `log`.
    pub fn spawn(name: &'static str, program: &Path, args: &[String], log: PathBuf) -> std::io::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let child = Self::start(program, args, out)?;
        Ok(Self { name, child, log, program: program.to_owned(), args: args.to_vec() })
    }

    /// The name given at spawn.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Stops the server and starts it again with the same program, arguments and log (appended),
    /// as an upgrade or a crash-and-restart would.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let out = std::fs::OpenOptions::new().append(true).open(&self.log)?;
        self.child = Self::start(&self.program, &self.args, out)?;
        Ok(())
    }

    fn start(program: &Path, args: &[String], out: std::fs::File) -> std::io::Result<Child> {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(program)
            .args(args)
            .env("WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
    }

    /// The server's own process id (the watchdog's child), while it runs.
    pub fn server_pid(&self) -> Option<u32> {
        let id = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children")).ok()?;
        // The watchdog's other child is its polling `sleep`.
        children
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() != "sleep"))
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of the log, for a startup failure report.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!("--- {} ({}) ---\n{}", self.name, self.log.display(), all[all.len().saturating_sub(lines)..].join("\n"))
    }

    /// Stops the server (SIGTERM through the watchdog, SIGKILL after a grace period).
    pub fn stop(&mut self) {
        // SIGTERM to the watchdog, which stops the server (escalating to SIGKILL itself) and exits.
        // Killing the watchdog outright would orphan the server, so that is only the last resort.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free loopback port (bound, then released for the server to take). Another process can take
/// it before the server binds it: start servers on such ports inside `with_fresh_ports`.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How many times [`with_fresh_ports`] runs `start` at most. Tests start operators on ephemeral
/// ports beside a starting plane, so losing a port happens, but twice in a row is already rare.
const PORT_ATTEMPTS: usize = 3;

/// Runs `start`, which starts `what` on ports from [`free_port`], and runs it again (choosing new
/// ports) when it failed because another process took a port before its server bound it.
/// A failed `start` must stop the servers it started, so that the next one begins clean.
pub async fn with_fresh_ports<T>(what: &str, mut start: impl AsyncFnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let mut attempt = 1;
    loop {
        match start().await {
            Err(error) if attempt < PORT_ATTEMPTS && is_port_race(&error) => {
                tracing::warn!(
                    what,
                    attempt,
                    "a port was taken before its server bound it; starting again on new ports"
                );
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Whether a startup failed because a server's port was taken: anywhere in the error chain, which
/// includes the server log tails a failed startup attaches (Go servers log `bind: address already
/// in use`, Rust's I/O error reads `Address already in use`).
pub fn is_port_race(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.to_string().to_ascii_lowercase().contains("address already in use"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn race() -> anyhow::Error {
        anyhow::anyhow!("listen tcp 127.0.0.1:43801: bind: address already in use")
            .context("a control-plane process exited during startup")
    }

    #[test]
    fn a_taken_port_is_told_apart_from_other_failures() {
        assert!(is_port_race(&race()));
        let eaddrinuse = std::io::Error::from_raw_os_error(98);
        assert!(is_port_race(&anyhow::Error::from(eaddrinuse).context("binding")));
        assert!(!is_port_race(&anyhow::anyhow!("kube-apiserver not ready after 120s")));
    }

    #[tokio::test]
    async fn a_lost_port_race_starts_again_until_the_attempts_run_out() {
        let mut starts = 0;
        let second = with_fresh_ports("a server", async || {
            starts += 1;
            if starts < 2 { Err(race()) } else { Ok(starts) }
        })
        .await;
        assert_eq!(second.unwrap(), 2);

        let mut starts = 0;
        let lost = with_fresh_ports("a server", async || -> anyhow::Result<()> {
            starts += 1;
            Err(race())
        })
        .await;
        assert!(lost.is_err());
        assert_eq!(starts, PORT_ATTEMPTS);
    }

    #[tokio::test]
    async fn other_failures_are_not_retried() {
        let mut starts = 0;
        let failed = with_fresh_ports("a server", async || -> anyhow::Result<()> {
            starts += 1;
            anyhow::bail!("no such binary")
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(starts, 1);
    }
}
