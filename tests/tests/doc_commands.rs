//! Every command the README and `docs/` print works as printed (issue 8, build 5). `make run`'s
//! own printed commands are run by `hack/e2e/run-commands-test.sh` on a node; this covers the
//! rest: each line of a `sh` block and each inline command in `README.md` and `docs/**/*.md`.
//!
//! - `kubectl` with an object or resource runs against the real API server, with the samples
//!   applied in a test namespace (in place of `mail`) and the Deployment the operator renders for
//!   them; a change runs with `--dry-run=server` where kubectl has it, for real (in the throwaway
//!   namespace) where it does not (`rollout restart`).
//! - `kubectl VERB` named in prose (no argument) must be a kubectl subcommand.
//! - `make TARGET` must be a target `make help` lists; `VAR=... make` must set a variable that
//!   the Makefile or `hack/` reads.
//! - `hack/...` must exist; a script must be executable and know the subcommand printed after it.
//! - `helm VERB ...` must be how a `hack/` script calls helm; `cargo VERB` a cargo subcommand.
//! - A YAML block of our API is admitted (`kubectl apply --dry-run=server`).
//!
//! - A block or paragraph after `<!-- doc-commands: reader-cluster (why) -->` is for the
//!   reader's own cluster (their Argo CD, their Helm release): its `kubectl` lines must use a
//!   verb and flags kubectl has and files the repository has, its `helm` lines a helm verb and
//!   our chart. A `console` block is a transcript: only its `$ ` lines are commands.
//! - `curl` must call a route the workload serves.
//!
//! Anything else that looks like a command (`curl`, another tool) fails the test until it is
//! taught here: a printed line nobody checks is how the README's commands broke before.
//!
//! Needs `kubectl` on PATH (or `KUBECTL`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use kube::api::{Api, Patch, PatchParams};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_operator::controller::authpolicy::SystemClock;
use mailagent_operator::controller::mailagent::build::{Inputs, build, validate};
use mailagent_tests::TestNamespace;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One printed command or YAML block and where it is printed.
#[derive(Debug)]
struct Printed {
    at: String,
    text: String,
    /// Marked `<!-- doc-commands: reader-cluster -->`: meant for the reader's own cluster
    /// (their Argo CD, their release): checked for shape, not run.
    reader: bool,
}

/// The marker a page puts on the line before a block or paragraph whose commands are for the
/// reader's own cluster.
const READER_CLUSTER: &str = "<!-- doc-commands: reader-cluster";

/// The Markdown files a reader is pointed at.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut found = vec![repo().join("README.md")];
    walk(&repo().join("docs"), &mut found);
    found.sort();
    found
}

/// `(commands, yaml blocks)` printed in `path`: lines of `sh`/`bash`/`console` blocks (comments
/// and `$ ` prompts removed) and inline code spans that start like a command.
fn printed_in(path: &Path) -> (Vec<Printed>, Vec<Printed>) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.strip_prefix(repo()).unwrap_or(path).display().to_string();
    let (mut commands, mut yaml) = (Vec::new(), Vec::new());
    let mut fence: Option<(String, usize, String)> = None;
    // A shell line ending in `\` continues on the next one.
    let mut continued: Option<(String, String)> = None;
    // Set by the marker; ends with the block or paragraph after it.
    let mut reader = false;
    for (index, raw) in text.lines().enumerate() {
        if raw.trim_start().starts_with(READER_CLUSTER) {
            reader = true;
            continue;
        }
        if fence.is_none() && raw.trim().is_empty() && continued.is_none() {
            reader = false;
        }
        let (at, joined);
        let line = match continued.take() {
            Some((first_at, head)) => {
                joined = format!("{head} {}", raw.trim());
                at = first_at;
                joined.as_str()
            }
            None => {
                at = format!("{name}:{}", index + 1);
                raw
            }
        };
        if fence.is_some() && line.trim_end().ends_with('\\') {
            continued = Some((at, line.trim_end().trim_end_matches('\\').trim_end().to_owned()));
            continue;
        }
        if let Some(info) = line.trim_start().strip_prefix("```") {
            match fence.take() {
                None => fence = Some((info.trim().to_owned(), index + 1, String::new())),
                Some((lang, start, body)) if lang == "yaml" && body.contains("apiVersion: mailagent.dev/") => {
                    yaml.push(Printed { at: format!("{name}:{start}"), text: body, reader });
                    reader = false;
                }
                Some(_) => reader = false,
            }
            continue;
        }
        match &mut fence {
            Some((lang, _, body)) => {
                if ["sh", "bash", "shell", "console"].contains(&lang.as_str()) {
                    // A `console` block is a transcript: its `$ ` lines are commands and the
                    // rest is what they printed.
                    let command = match (lang.as_str(), line.trim().strip_prefix("$ ")) {
                        ("console", None) => continue,
                        (_, prompted) => prompted.unwrap_or(line.trim()),
                    };
                    let command = command.split(" #").next().unwrap_or_default().trim();
                    if !command.is_empty() && !command.starts_with('#') {
                        commands.push(Printed { at, text: command.to_owned(), reader });
                    }
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None => {
                // Odd pieces between backticks are code spans.
                for span in line.split('`').skip(1).step_by(2) {
                    if looks_like_a_command(span) {
                        commands.push(Printed { at: at.clone(), text: span.trim().to_owned(), reader });
                    }
                }
            }
        }
    }
    (commands, yaml)
}

const TOOLS: [&str; 6] = ["kubectl", "make", "curl", "helm", "cargo", "wget"];

/// A code span that starts with a tool and gives it something (a bare `kubectl` is a name in
/// prose, not a command).
fn looks_like_a_command(span: &str) -> bool {
    let words = without_env(span.trim());
    match words.first() {
        Some(first) if first.starts_with("hack/") => true,
        Some(first) => words.len() >= 2 && TOOLS.contains(&first.as_str()),
        None => false,
    }
}

/// The words of a command after any leading `NAME=value` assignments.
fn without_env(command: &str) -> Vec<String> {
    let words = shlex::split(command).unwrap_or_else(|| vec![command.to_owned()]);
    words.into_iter().skip_while(|w| env_assignment(w).is_some()).collect()
}

fn env_assignment(word: &str) -> Option<&str> {
    let (name, _) = word.split_once('=')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).then_some(name)
}

/// The targets `make help` lists.
fn make_targets() -> Vec<String> {
    let out = Command::new("make").arg("-s").arg("help").current_dir(repo()).output().expect("make");
    assert!(out.status.success(), "make help: {}", String::from_utf8_lossy(&out.stderr));
    let plain: String = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    plain
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `needle` occurs in the Makefile or a file under `hack/`.
fn hack_or_makefile_mentions(needle: &str, also: &[&str]) -> bool {
    hack_or_makefile_has_line(&|line: &str| line.contains(needle) && also.iter().all(|w| line.contains(w)))
}

/// Whether a line of the Makefile or of a file under `hack/` satisfies `check`.
fn hack_or_makefile_has_line(check: &dyn Fn(&str) -> bool) -> bool {
    fn walk(dir: &Path, check: &dyn Fn(&str) -> bool) -> bool {
        std::fs::read_dir(dir).unwrap().any(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                !path.ends_with("k8sbin") && walk(&path, check)
            } else {
                std::fs::read_to_string(&path).is_ok_and(|text| text.lines().any(check))
            }
        })
    }
    std::fs::read_to_string(repo().join("Makefile")).unwrap().lines().any(check) || walk(&repo().join("hack"), check)
}

fn kubectl_program() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned())
}

/// Runs `line` in bash (so `$(date +%s)` expands as for a reader) with `kubectl` pointed at the
/// test plane; `Ok(stdout)` or the reason it failed.
fn run_shell(line: &str, cache: &Path) -> Result<String, String> {
    let kubeconfig = mailagent_tests::shared().kubeconfig_path();
    let program = kubectl_program();
    // `timeout` runs the binary, not this function, and bounds a command that would hang.
    let script = format!(
        "kubectl() {{ timeout 120 {program:?} --kubeconfig {kubeconfig:?} --cache-dir {cache:?} \"$@\"; }}\n{line}"
    );
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", &script]).current_dir(repo()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() { Ok(stdout) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// Verbs that take `--dry-run=server`; any other verb that changes something (`rollout
/// restart`, `scale`) changes the throwaway namespace for real.
const DRY_RUN: [&str; 9] = ["apply", "create", "patch", "annotate", "label", "delete", "replace", "set", "expose"];
/// Words that end a command in a shell line.
const SHELL_OPERATORS: [&str; 7] = ["|", "||", "&&", "&", ";", ">", ">>"];
/// Flags that take the next word as their value.
const VALUE_FLAGS: [&str; 14] = [
    "-n",
    "--namespace",
    "-o",
    "--output",
    "--type",
    "-p",
    "--patch",
    "-f",
    "-l",
    "--selector",
    "--field-selector",
    "-c",
    "--container",
    "--patch-file",
];

/// Checks one printed command; `Err` says why it does not work as printed.
fn check(printed: &Printed, targets: &[String], ns: &str, agent: &str, cache: &Path) -> Result<(), String> {
    // `NAME=$(command ...)` prints a command whose output the reader keeps: check the command.
    let inner = printed.text.split_once("=$(").filter(|(name, _)| env_assignment(&format!("{name}=")).is_some());
    if let Some((_, command)) = inner {
        let command = command.strip_suffix(')').ok_or("`$(` without its `)`")?;
        return check(
            &Printed { at: printed.at.clone(), text: command.to_owned(), reader: printed.reader },
            targets,
            ns,
            agent,
            cache,
        );
    }
    let text = &printed.text;
    let all = shlex::split(text).ok_or("unbalanced quotes")?;
    for name in all.iter().map_while(|w| env_assignment(w)) {
        if !hack_or_makefile_mentions(name, &[]) {
            return Err(format!("nothing in the Makefile or hack/ reads {name}"));
        }
    }
    let words = without_env(text);
    let tool = words[0].as_str();
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    match tool {
        "make" => {
            for target in args.iter().filter(|a| !a.starts_with('-') && !a.contains('=')) {
                if !targets.iter().any(|t| t == target) {
                    return Err(format!("`make help` does not list {target}"));
                }
            }
            Ok(())
        }
        "kubectl" => {
            // The first word that is neither a flag nor a flag's value is the verb
            // (`kubectl -n mail get ap`).
            // The command ends at a shell operator (`| base64 -d > file`, a trailing `&`).
            let args: Vec<&str> = args.iter().copied().take_while(|w| !SHELL_OPERATORS.contains(w)).collect();
            let mut words = Vec::new();
            let mut rest = args.iter();
            while let Some(word) = rest.next() {
                if VALUE_FLAGS.contains(word) {
                    rest.next();
                } else if !word.starts_with('-') {
                    words.push(*word);
                }
            }
            let (verb, operands) =
                words.split_first().map(|(v, o)| (*v, o.to_vec())).ok_or("kubectl without a verb")?;
            if printed.reader {
                // `rollout status`, `create job`: the subcommand's help lists its flags.
                let command = operands.first().map_or(verb.to_owned(), |sub| format!("{verb} {sub}"));
                return kubectl_shape(&command, &args, cache);
            }
            if operands.is_empty() || (verb == "rollout" && operands.len() == 1) {
                // Named in prose (`kubectl patch`): the subcommand must exist.
                return run_shell(&format!("kubectl {verb} --help >/dev/null"), cache).map(drop);
            }
            let line = text.replace("<agent>", agent);
            if line.contains('<') {
                return Err("a placeholder this test cannot fill".into());
            }
            // The samples' namespace is the test's; a watch (`-w`) is the same `get` that does
            // not end.
            // Split on single spaces, not shell words, so that joining gives back the line as
            // printed (`$(date +%s)`, quoted JSON).
            let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
            words.retain(|w| w != "-w" && w != "--watch");
            let mut swapped = false;
            for i in 0..words.len() {
                if words[i] == "--namespace=mail" {
                    words[i] = format!("--namespace={ns}");
                    swapped = true;
                } else if ["-n", "--namespace"].contains(&words[i].as_str())
                    && words.get(i + 1).is_some_and(|w| w == "mail")
                {
                    words[i + 1] = ns.to_owned();
                    swapped = true;
                }
            }
            if !swapped {
                words.push(format!("--namespace={ns}"));
            }
            if DRY_RUN.contains(&verb) {
                words.push("--dry-run=server".to_owned());
            }
            let out = run_shell_patiently(&words.join(" "), verb, cache)?;
            // A list may be empty (kubectl says so on stderr); a named object must show something.
            if verb == "get" && operands.len() >= 2 && out.trim().is_empty() {
                return Err("printed nothing".into());
            }
            Ok(())
        }
        "curl" => curl_target(&args),
        "cargo" => {
            let verb = args.first().ok_or("cargo without a subcommand")?;
            let out = Command::new("cargo").args([verb, "--help"]).output().unwrap();
            out.status.success().then_some(()).ok_or(format!("no cargo subcommand {verb}"))
        }
        "helm" => {
            let verb = args.first().ok_or("helm without a subcommand")?;
            if printed.reader {
                return helm_shape(&args);
            }
            // helm is installed by `make node`, not necessarily here: the line must be how our
            // scripts call it.
            let mut words: Vec<&str> = args.iter().copied().filter(|w| w.starts_with('-')).collect();
            words.extend(args.windows(2).filter(|w| VALUE_FLAGS.contains(&w[0])).map(|w| w[1]));
            // The same line calls helm (`"$HELM" install`), with this verb and these flags.
            let calls = |line: &str| {
                line.to_lowercase().contains("helm") && line.contains(verb) && words.iter().all(|w| line.contains(w))
            };
            hack_or_makefile_has_line(&calls)
                .then_some(())
                .ok_or_else(|| "no script under hack/ calls helm like this".to_owned())
        }
        path if path.starts_with("hack/") => {
            let file = repo().join(path);
            let meta = std::fs::metadata(&file).map_err(|e| format!("{path}: {e}"))?;
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            // A script (it has a shebang) runs as printed; a library such as `lib.sh` is sourced.
            if path.ends_with(".sh") && text.starts_with("#!") {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o111 == 0 {
                    return Err(format!("{path} is not executable"));
                }
                // A subcommand (a lowercase word; DIR and the like are placeholders) is one the
                // script knows.
                if let Some(sub) = args.first().filter(|a| a.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                    && !text.contains(sub)
                {
                    return Err(format!("{path} has no subcommand {sub}"));
                }
            }
            Ok(())
        }
        path if path.starts_with("target/debug/") => {
            // A binary of this workspace, built by `make test-integration`: it exists and knows
            // every flag the line gives it.
            let binary = repo().join(path);
            let help = Command::new(&binary).arg("--help").output().map_err(|e| format!("{path}: {e}"))?;
            let help = String::from_utf8_lossy(&help.stdout).into_owned();
            match args.iter().find(|a| a.starts_with("--") && !help.contains(a.split('=').next().unwrap_or(a))) {
                Some(flag) => Err(format!("{path} has no flag {flag}")),
                None => Ok(()),
            }
        }
        other => Err(format!("a printed `{other}` line this test does not know how to check")),
    }
}

/// `kubectl explain` reads the OpenAPI the API server publishes for our CRDs a moment after
/// they are installed; a reader runs it long after. Other commands run once.
fn run_shell_patiently(line: &str, verb: &str, cache: &Path) -> Result<String, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match run_shell(line, cache) {
            Err(why) if verb == "explain" && std::time::Instant::now() < deadline => {
                eprintln!("retrying `{line}`: {why}");
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

/// The flags `kubectl VERB --help` and `kubectl options` list.
fn kubectl_flags(command: &str, cache: &Path) -> Result<String, String> {
    let verb = command.split(' ').next().unwrap_or(command);
    let help = run_shell(&format!("kubectl {command} --help"), cache)
        .or_else(|_| run_shell(&format!("kubectl {verb} --help"), cache))
        .map_err(|e| format!("no kubectl {verb}: {e}"))?;
    Ok(help + &run_shell("kubectl options", cache)?)
}

/// A command for the reader's cluster: the verb exists, every flag is one kubectl knows for it,
/// and every file it reads is in the repository.
fn kubectl_shape(verb: &str, args: &[&str], cache: &Path) -> Result<(), String> {
    let known = kubectl_flags(verb, cache)?;
    for (i, word) in args.iter().enumerate() {
        let Some(flag) = word.strip_prefix('-').map(|_| word.split('=').next().unwrap_or(word)) else { continue };
        let listed = if flag.starts_with("--") { format!("{flag}=") } else { format!("{flag},") };
        if !known.contains(&listed) {
            return Err(format!("kubectl {verb} has no flag {flag}"));
        }
        if ["-f", "--filename", "--patch-file"].contains(&flag) {
            let file = word.split_once('=').map(|(_, v)| v).or_else(|| args.get(i + 1).copied()).unwrap_or_default();
            if !repo().join(file).exists() {
                return Err(format!("{flag} {file}: no such file in the repository"));
            }
        }
    }
    Ok(())
}

/// A helm command for the reader's cluster: a verb helm has, and a chart that is ours.
fn helm_shape(args: &[&str]) -> Result<(), String> {
    const VERBS: [&str; 8] = ["install", "upgrade", "rollback", "uninstall", "status", "history", "template", "lint"];
    let verb = args.first().copied().unwrap_or_default();
    if !VERBS.contains(&verb) {
        return Err(format!("helm has no verb {verb}"));
    }
    match args.iter().find(|a| a.starts_with("charts/")) {
        Some(chart) if !repo().join(chart).join("Chart.yaml").exists() => Err(format!("{chart} is not a chart here")),
        None if ["install", "upgrade", "template", "lint"].contains(&verb) => Err("no chart of ours named".into()),
        _ => Ok(()),
    }
}

/// A `curl` line calls a route the workload serves: the doors, health, cards and the REST
/// routes of the capability table.
fn curl_target(args: &[&str]) -> Result<(), String> {
    use mailagent_crds::capability::Capability;
    use mailagent_crds::contract::http;
    let url =
        args.iter().find(|a| a.starts_with("http://") || a.starts_with("https://")).ok_or("curl without a URL")?;
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{}", p.split('?').next().unwrap_or(p))).unwrap_or_default();
    let doors = [
        http::HEALTHZ,
        http::READYZ,
        http::MCP,
        http::A2A,
        http::AGENT_CARD,
        http::JWKS,
        "/health",
        "/metrics",
        "/openapi.json",
    ];
    let served = doors.contains(&path.as_str()) || Capability::ALL.iter().any(|c| c.path() == path);
    served.then_some(()).ok_or_else(|| format!("the workload serves no {path}"))
}

/// The samples in `ns`, plus the Deployment the operator renders for the agent (commands such
/// as `kubectl rollout restart deployment/<agent>` need it); returns the agent's name.
async fn apply_samples(admin: &kube::Client, ns: &str) -> String {
    let params = PatchParams::apply("doc-commands-test").force();
    let mut agent = None;
    let mut policy = None;
    for file in ["hack/samples/10-authpolicy.yaml", "hack/samples/20-mailagent.yaml"] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let mut doc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        doc["metadata"]["namespace"] = ns.into();
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        match doc["kind"].as_str() {
            Some("AuthPolicy") => {
                let api = Api::<AuthPolicy>::namespaced(admin.clone(), ns);
                policy = Some(api.patch(&name, &params, &Patch::Apply(&doc)).await.expect("the sample policy"));
            }
            Some("MailAgent") => {
                let api = Api::<MailAgent>::namespaced(admin.clone(), ns);
                agent = Some(api.patch(&name, &params, &Patch::Apply(&doc)).await.expect("the sample agent"));
            }
            other => panic!("{file}: unexpected kind {other:?}"),
        }
    }
    let (agent, policy) = (agent.unwrap(), policy.unwrap());
    let valid = validate(Inputs { agent: &agent, policy: Some(&policy.spec) }).expect("the sample is valid");
    let deployment = build(&valid).deployment;
    let name = agent.metadata.name.clone().unwrap();
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(admin.clone(), ns)
        .patch(&name, &params, &Patch::Apply(&deployment))
        .await
        .expect("the rendered Deployment");
    name
}

#[tokio::test]
async fn every_printed_command_works_as_printed() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let agent = apply_samples(&admin, ns.name()).await;
    // The policy's keys and status are what `kubectl get ap ... -o jsonpath` lines print.
    let policies = support::RunningPolicies::start(ns.name(), std::sync::Arc::new(SystemClock)).await;
    let api = Api::<AuthPolicy>::namespaced(admin.clone(), ns.name());
    support::eventually(
        "the sample policy's keys",
        std::time::Duration::from_secs(60),
        || async { api.get("team-auth").await.ok() },
        |p| p.status.as_ref().is_some_and(|s| !s.keys.is_empty()),
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let targets = make_targets();
    assert!(targets.iter().any(|t| t == "test-integration"), "make help parsed: {targets:?}");

    let (mut commands, mut yaml) = (Vec::new(), Vec::new());
    for document in documents() {
        let (c, y) = printed_in(&document);
        commands.extend(c);
        yaml.extend(y);
    }
    let mut failures = Vec::new();
    for printed in &commands {
        if let Err(why) = check(printed, &targets, ns.name(), &agent, cache.path()) {
            failures.push(format!("{}: `{}`: {why}", printed.at, printed.text));
        }
    }
    for block in &yaml {
        let text = block.text.replace("namespace: mail}", &format!("namespace: {}}}", ns.name()));
        let text = text.replace("namespace: mail\n", &format!("namespace: {}\n", ns.name()));
        let file = cache.path().join("block.yaml");
        std::fs::write(&file, text).unwrap();
        if let Err(why) = run_shell(&format!("kubectl apply --dry-run=server -f {file:?}"), cache.path()) {
            failures.push(format!("{}: the YAML block is not admitted: {why}", block.at));
        }
    }
    let kubectl_runs = commands.iter().filter(|c| c.text.starts_with("kubectl ")).count();
    eprintln!("checked {} printed commands ({kubectl_runs} kubectl) and {} YAML blocks", commands.len(), yaml.len());
    assert!(failures.is_empty(), "printed commands that do not work:\n{}", failures.join("\n"));
    // The README's own lines are among them, so an extraction that finds nothing cannot pass.
    for expected in ["kubectl get mail", "kubectl explain mailagent.spec", "make test"] {
        assert!(commands.iter().any(|c| c.text == expected), "not extracted: {expected}");
    }
    assert!(!yaml.is_empty(), "the README's API-at-a-glance block was not extracted");
    policies.stop().await;
    ns.delete().await.ok();
}

/// The extraction itself, on a made-up page: fences, prompts, comments, inline spans, prose.
#[test]
fn extraction_finds_commands_not_prose() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "Run `make run`, then `kubectl get mail`; edit `spec.suspend`.\n\
         ```sh\n$ make test   # everything\n# a comment\nFOO=1 make e2e\n```\n\
         ```yaml\napiVersion: mailagent.dev/v1alpha1\nkind: MailAgent\n```\n\
         ```yaml\nkind: Other\n```\n\
         ```console\n$ kubectl get ap\nNAME   MODE\nteam   hybrid\n```\n\
         Name `kubectl` alone, or run `hack/node-host.sh`.\n\n\
         <!-- doc-commands: reader-cluster (theirs) -->\n```sh\nhelm rollback x 3\n```\n\
         After the block: `make lint`.\n",
    )
    .unwrap();
    let (commands, yaml) = printed_in(&page);
    let texts: Vec<&str> = commands.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "make run",
            "kubectl get mail",
            "make test",
            "FOO=1 make e2e",
            "kubectl get ap",
            "hack/node-host.sh",
            "helm rollback x 3",
            "make lint"
        ]
    );
    let reader: Vec<&str> = commands.iter().filter(|c| c.reader).map(|c| c.text.as_str()).collect();
    assert_eq!(reader, ["helm rollback x 3"], "the marker covers the block after it and nothing else");
    assert_eq!(yaml.len(), 1);
    assert!(yaml[0].at.ends_with(":7"), "{}", yaml[0].at);
    assert_eq!(without_env("FOO=1 BAR=x make e2e"), ["make", "e2e"]);
}
