//! "Admitted and Ready in the operator" implies "the workload starts and means the same thing"
//! (issue 8). For every sample and fixture MailAgent and AuthPolicy: render the children with
//! the operator's builders, lay the ConfigMap out as files the way the pod mounts it, give the
//! workload's settings loader the container's environment (mount paths moved into a temporary
//! directory), and compare what each side understood: schedules (their next runs), time zone,
//! rate limit, provider, surfaces, auth modes, the mutation switch and the state layout.
//!
//! No API server: the builders and the loader are pure. The operator side of a schedule is what
//! its `validate` step parses, `mailagent_schedule::Schedule` in `spec.schedules.timeZone`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};
use mailagent_crds::contract::{MailboxProvider, McpAuthMode, Surface, paths};
use mailagent_crds::{AuthPolicySpec, MailAgent};
use mailagent_mail::schedule::CronSchedule;
use mailagent_operator::controller::mailagent::build::{Inputs, build, validate};
use mailagent_schedule::{Schedule, parse_time_zone};
use mailagent_service::settings::{Settings, Source, mutation_switch};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `(name, document)` for every document of `kind` in `hack/samples/` and its variants
/// (`hack/samples/oauth/`).
fn samples(kind: &str) -> Vec<(String, serde_json::Value)> {
    let mut found = Vec::new();
    let mut files: Vec<_> = ["hack/samples", "hack/samples/oauth"]
        .into_iter()
        .flat_map(|dir| std::fs::read_dir(repo(dir)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    files.sort();
    for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let path = path.strip_prefix(repo("hack/samples")).unwrap_or(&path).to_owned();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
            if value["kind"] == kind {
                found.push((path.display().to_string(), value));
            }
        }
    }
    assert!(!found.is_empty(), "no {kind} in hack/samples");
    found
}

/// MailAgent specs the operator and admission tests use, plus the grammar's corners: every
/// schedule form, zones with DST, defaults only, Gmail, a subset of surfaces, OAuth for MCP.
const AGENT_FIXTURES: &[&str] = &[
    "{}",
    "schedules: {digest: '0 8 * * 1-5', scan: '*/15 * * * *', timeZone: Europe/Berlin}",
    "schedules: {digest: '0 8 * * 0', scan: '@annually'}",
    "schedules: {digest: '30 2 * * 7', scan: '0 */2 * * SAT-SUN', timeZone: America/New_York}",
    "schedules: {digest: '0 8 1 * MON', scan: '@weekly', timeZone: Australia/Lord_Howe}",
    "schedules: {digest: '15 9 */2 JAN-JUN *', scan: '@midnight', timeZone: Asia/Kolkata}",
    "schedules: {digest: '0 8 * * MON', scan: '@hourly', timeZone: Europe/Berlin}",
    "rateLimit: {perMinute: 5, burst: 0}",
    "surfaces: {rest: true, a2a: false, mcp: false}",
    "mailbox: {provider: gmail, credentialsSecretRef: {name: gmail}, address: owner@example.com}",
    "mcp: {enableMutationTools: true, authMode: oauth, resourceServerUrl: 'https://mail.example.com/mcp'}",
    "mcp: {authMode: api_key, allowedOrigins: ['https://app.example.com']}",
    "surfaces: {rest: false, a2a: false, mcp: true}\nrateLimit: {perMinute: 1, burst: 1}",
];

/// AuthPolicy specs besides the samples: one per mode, and an `api_key` policy whose MCP door
/// takes OAuth tokens.
const POLICY_FIXTURES: &[&str] = &[
    "{mode: api_key, apiKeys: [{name: bot, scopes: ['unsubscribe:read']}]}",
    "{mode: jwt, jwt: {issuer: 'https://issuer.example.com', audiences: [mailagent], algorithms: [RS256]}}",
    "{mode: api_key, mcp: {mode: oauth, oauth: {issuer: 'https://login.example.org/realms/mail', resource: 'https://mcp.example.org/mcp'}}}",
];

/// What the operator must refuse (Ready=False with this reason, nothing rendered) instead of
/// rendering a configuration the workload would refuse or read differently, written out here
/// from the rules rather than taken from the operator.
fn expected_refusal(agent: &MailAgent, policy: Option<&AuthPolicySpec>) -> Option<&'static str> {
    if agent.spec.rate_limit.burst == 0 {
        // Admission refuses it too (`admission.rs`); the operator's check covers objects stored
        // under the older schema.
        return Some("InvalidSpec");
    }
    let oauth_without_issuer = policy.is_some_and(|p| p.mcp.oauth.is_none());
    (agent.spec.mcp.auth_mode == McpAuthMode::Oauth && oauth_without_issuer).then_some("AuthPolicyMismatch")
}

fn agent_from(mut spec: serde_json::Value) -> MailAgent {
    let base = serde_json::json!({
        "image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "policy"},
        "mailbox": {"provider": "maildir"}});
    for (k, v) in base.as_object().unwrap() {
        spec.as_object_mut().unwrap().entry(k.clone()).or_insert(v.clone());
    }
    let mut agent = MailAgent::new("inbox", serde_json::from_value(spec).expect("a MailAgent spec"));
    agent.metadata.namespace = Some("team".into());
    agent.metadata.uid = Some("0b1c2d3e-0000-4000-8000-000000000001".into());
    agent
}

fn agents() -> Vec<(String, MailAgent)> {
    let mut agents: Vec<_> =
        samples("MailAgent").into_iter().map(|(file, doc)| (file, agent_from(doc["spec"].clone()))).collect();
    for fixture in AGENT_FIXTURES {
        agents.push((format!("fixture {fixture}"), agent_from(serde_yaml::from_str(fixture).unwrap())));
    }
    agents
}

fn policies() -> Vec<(String, Option<AuthPolicySpec>)> {
    let mut policies: Vec<_> = samples("AuthPolicy")
        .into_iter()
        .map(|(file, doc)| (file, Some(serde_json::from_value(doc["spec"].clone()).expect("an AuthPolicy spec"))))
        .collect();
    for fixture in POLICY_FIXTURES {
        policies.push((format!("fixture {fixture}"), Some(serde_yaml::from_str(fixture).unwrap())));
    }
    policies.push(("no policy (fail closed)".into(), None));
    policies
}

/// The pod's view: the ConfigMap's keys as files in the config directory, the container's
/// environment, each mount path replaced by a directory under `root`.
fn workload_source(children: &mailagent_operator::controller::mailagent::build::Children, root: &Path) -> Source {
    let mounts = [
        (paths::CONFIG_DIR, root.join("config")),
        (paths::KEYRING_DIR, root.join("keyring")),
        (paths::CREDENTIALS_DIR, root.join("credentials")),
        (paths::STATE_DIR, root.join("state")),
    ];
    for (_, dir) in &mounts {
        std::fs::create_dir_all(dir).unwrap();
    }
    for (name, value) in children.config_map.data.clone().unwrap_or_default() {
        std::fs::write(root.join("config").join(name), value).unwrap();
    }
    let pod = children.deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let container = pod.containers.iter().find(|c| c.name == "mailagent").expect("the workload container");
    let env: HashMap<String, String> = container
        .env
        .iter()
        .flatten()
        .map(|var| {
            let value = var.value.clone().expect("only plain values in the pod spec");
            let value =
                mounts.iter().find(|(path, _)| *path == value).map_or(value, |(_, dir)| dir.display().to_string());
            (var.name.clone(), value)
        })
        .collect();
    Source::from_map(env)
}

fn next_runs(schedule: &CronSchedule, from: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    std::iter::successors(schedule.next_after(from), |last| schedule.next_after(*last)).take(count).collect()
}

/// Starting points around the DST changes of both hemispheres and an ordinary day.
fn starts() -> Vec<DateTime<Utc>> {
    [
        "2026-03-07T12:00:00Z",
        "2026-03-28T20:00:00Z",
        "2026-04-04T12:00:00Z",
        "2026-10-24T20:00:00Z",
        "2026-10-31T12:00:00Z",
    ]
    .iter()
    .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
    .collect()
}

#[test]
fn what_the_operator_renders_the_workload_reads_the_same_way() {
    let (mut compared, mut oauth_loaded, mut refused) = (0, 0, 0);
    for (agent_name, agent) in agents() {
        for (policy_name, policy) in policies() {
            let case = format!("{agent_name} with {policy_name}");
            let valid = validate(Inputs { agent: &agent, policy: policy.as_ref() });
            let valid = match (valid, expected_refusal(&agent, policy.as_ref())) {
                (Ok(valid), None) => valid,
                (Err(problem), Some(reason)) => {
                    assert_eq!(problem.reason(), reason, "{case}: {problem}");
                    refused += 1;
                    continue;
                }
                (Ok(_), Some(reason)) => panic!("{case}: the operator renders what it must refuse ({reason})"),
                (Err(problem), None) => panic!("{case}: the operator refuses a good spec: {problem}"),
            };
            let children = build(&valid);
            let root = tempfile::tempdir().unwrap();
            let source = workload_source(&children, root.path());
            let settings =
                Settings::load(&source).unwrap_or_else(|e| panic!("{case}: the workload refuses to start: {e}"));
            let spec = &agent.spec;

            // Schedules: parsed by the operator's type in the spec's zone, by the workload from
            // its files; the next runs agree from every starting point.
            let zone = parse_time_zone(&spec.schedules.time_zone).expect("the operator validated the zone");
            assert_eq!(settings.mail.time_zone, zone, "{case}: time zone");
            for (field, ours, theirs) in [
                ("digest", &spec.schedules.digest, &settings.mail.digest_schedule),
                ("scan", &spec.schedules.scan, &settings.mail.scan_schedule),
            ] {
                let operator = ours.as_deref().map(|e| Schedule::parse(e).expect("the operator validated it"));
                assert_eq!(operator.is_some(), theirs.is_some(), "{case}: {field} present on one side only");
                let (Some(operator), Some(workload)) = (operator, theirs.clone()) else { continue };
                let operator = CronSchedule::new(operator, zone);
                let workload = CronSchedule::new(workload, settings.mail.time_zone);
                for start in starts() {
                    let expected = next_runs(&operator, start, 8);
                    assert_eq!(expected.len(), 8, "{case}: {field} runs");
                    assert_eq!(next_runs(&workload, start, 8), expected, "{case}: {field} from {start}");
                }
                compared += 1;
            }

            // Defaults and enums: one value on both sides, the rate limit exactly as written.
            assert_eq!(
                (settings.rate_per_minute, settings.rate_burst),
                (spec.rate_limit.per_minute, spec.rate_limit.burst),
                "{case}: rate limit"
            );
            assert_eq!(settings.mail.provider, spec.mailbox.provider, "{case}: provider");
            let surfaces: BTreeSet<Surface> = [
                (Surface::Rest, spec.surfaces.rest),
                (Surface::A2a, spec.surfaces.a2a),
                (Surface::Mcp, spec.surfaces.mcp),
            ]
            .into_iter()
            .filter_map(|(surface, on)| on.then_some(surface))
            .collect();
            assert_eq!(settings.surfaces, surfaces, "{case}: surfaces");
            assert_eq!(settings.auth_mode, children.config.auth_mode, "{case}: auth mode");
            assert_eq!(settings.mcp_auth_mode, children.config.mcp_auth_mode, "{case}: MCP auth mode");
            assert_eq!(mutation_switch(&source), spec.mcp.enable_mutation_tools, "{case}: mutation switch");
            assert_eq!(settings.state_dir, root.path().join("state"), "{case}: state volume");
            if spec.mailbox.provider == MailboxProvider::Maildir {
                assert_eq!(settings.maildir, None, "{case}: the workload's default Maildir, on the state volume");
            }
            if let Some(oauth) = &settings.oauth {
                assert_eq!(Some(oauth.resource.as_str()), valid.resource_server_url(), "{case}: OAuth resource");
                oauth_loaded += 1;
            }
        }
    }
    assert!(compared >= 2 * AGENT_FIXTURES.len(), "schedules compared: {compared}");
    // Both findings stay covered (the burst fixture under every policy, the oauth fixture under
    // the policies without OAuth settings), and OAuth doors are rendered and loaded, not only refused.
    assert!(refused > policies().len(), "refusals: {refused}");
    assert!(oauth_loaded >= agents().len(), "OAuth doors loaded: {oauth_loaded}");
}
