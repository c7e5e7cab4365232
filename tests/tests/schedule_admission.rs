//! The API server's CEL rule for schedules accepts exactly what the workload's parser accepts
//! (`mailagent_schedule::Schedule`, which the operator validates with and the workload runs), so
//! an admitted schedule never stops the workload at start (issue 8, defect 1).
//!
//! Each expression is sent as a dry-run server-side apply: nothing is stored.

mod support;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_schedule::{CEL_MESSAGE, Schedule};
use mailagent_tests::TestNamespace;
use serde_json::{Value, json};

const TABLE: &[&str] = &[
    // Accepted: the CronJob grammar.
    "0 8 * * 1-5",
    "0 8 * * 0",
    "0 8 * * 7",
    "0 8 * * MON-FRI",
    "0 8 * * mon,wed,Fri",
    "0 8 * * FRI-SUN",
    "0 8 * * SUN-SUN",
    "*/15 * * * *",
    "5,35 9-17/2 1,15 JAN-JUN,dec *",
    "0 0 */2 * MON",
    "0 0 1 */3 *",
    "10/25 * * * *",
    "00 08 01 01 00",
    " 0  8 * * * ",
    "0 0 31 2 *",
    "59 23 31 12 7",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
    // Refused.
    "",
    "every day",
    "* * * *",
    "0 0 8 * * *",
    "0 0 8 * * * 2026",
    "60 * * * *",
    "0 24 * * *",
    "0 8 0 * *",
    "0 8 32 * *",
    "0 8 * 13 *",
    "0 8 * * 8",
    "0 8 * * 5-1",
    "0 8 * * FRI-MON",
    "0 8 * MON *",
    "0 8 * * JAN",
    "0 8 * * MONDAY",
    "0 8 * * 1L",
    "0 8 L * *",
    "0 8 15W * *",
    "0 8 * * 1#2",
    "0 8 ? * *",
    "*/0 * * * *",
    "*/60 * * * *",
    "005 * * * *",
    "0 8 * * 1,",
    "@every 1h",
    "@reboot",
    "@DAILY",
    "TZ=UTC 0 8 * * *",
    "0 8 * * \u{017f}un",
];

/// More expressions, from the same kind of generator the unit tests use (fixed seed).
fn generated(count: usize) -> Vec<String> {
    const TOKENS: [&str; 24] = [
        "*", "0", "1", "5", "7", "8", "07", "12", "13", "23", "24", "31", "32", "59", "60", "MON", "sun", "Fri", "JAN",
        "dec", "L", "?", "x", "",
    ];
    const LIKELY: [&str; 8] = ["*", "*", "1", "5", "*/5", "1-5", "MON-FRI", "0"];
    const GLUE: [&str; 4] = ["-", "/", ",", "-"];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    (0..count)
        .map(|_| {
            let fields = [5, 5, 5, 5, 4, 6][next(6)];
            (0..fields)
                .map(|_| {
                    if next(3) > 0 {
                        return LIKELY[next(LIKELY.len())].to_owned();
                    }
                    let mut field = TOKENS[next(TOKENS.len())].to_owned();
                    for _ in 0..next(3) {
                        field.push_str(GLUE[next(GLUE.len())]);
                        field.push_str(TOKENS[next(TOKENS.len())]);
                    }
                    field
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// `Ok` when admitted, else the API server's message.
async fn admit(client: &Client, ns: &str, kind: &str, body: Value) -> Result<(), String> {
    let params = PatchParams { dry_run: true, ..PatchParams::apply("schedule-test").force() };
    let result = if kind == "MailAgent" {
        Api::<MailAgent>::namespaced(client.clone(), ns).patch("a", &params, &Patch::Apply(&body)).await.map(|_| ())
    } else {
        Api::<AuthPolicy>::namespaced(client.clone(), ns).patch("p", &params, &Patch::Apply(&body)).await.map(|_| ())
    };
    result.map_err(|e| match e {
        kube::Error::Api(status) => status.message,
        other => panic!("not an admission answer: {other}"),
    })
}

fn agent(field: &str, expression: &str) -> Value {
    json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "metadata": {"name": "a"},
        "spec": {"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "p"},
                 "mailbox": {"provider": "maildir"}, "schedules": {field: expression}}})
}

fn policy(expression: &str) -> Value {
    json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "p"},
        "spec": {"mode": "api_key", "apiKeys": [{"name": "bot", "scopes": ["unsubscribe:read"]}],
                 "rotation": {"schedule": expression}}})
}

#[tokio::test]
async fn admission_accepts_exactly_what_the_parser_accepts() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let mut expressions: Vec<String> = TABLE.iter().map(|s| (*s).to_owned()).collect();
    expressions.extend(generated(300));
    let mut disagreements = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for expression in &expressions {
        let parsed = Schedule::parse(expression);
        for field in ["digest", "scan"] {
            let admitted = admit(&admin, ns.name(), "MailAgent", agent(field, expression)).await;
            match (&parsed, &admitted) {
                (Ok(_), Ok(())) => accepted += 1,
                (Err(_), Err(message)) => {
                    assert!(
                        message.contains(CEL_MESSAGE),
                        "{expression:?} refused without the rule's message: {message}"
                    );
                    refused += 1;
                }
                _ => disagreements.push(format!("{field} {expression:?}: parser {parsed:?}, API server {admitted:?}")),
            }
        }
    }
    assert!(disagreements.is_empty(), "admission and parser disagree:\n{}", disagreements.join("\n"));
    assert!(
        accepted >= 2 * 30 && refused >= 2 * 30,
        "the table covers both sides: {accepted} accepted, {refused} refused"
    );
    ns.delete().await.ok();
}

#[tokio::test]
async fn the_issue_8_expressions_are_admitted_on_every_schedule_field() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    for expression in ["0 8 * * 1-5", "0 8 * * 0", "@annually"] {
        Schedule::parse(expression).unwrap();
        for field in ["digest", "scan"] {
            admit(&admin, ns.name(), "MailAgent", agent(field, expression)).await.unwrap();
        }
        let rotation = admit(&admin, ns.name(), "AuthPolicy", policy(expression)).await;
        rotation.unwrap_or_else(|e| panic!("AuthPolicy rotation.schedule {expression:?}: {e}"));
    }
    let err = admit(&admin, ns.name(), "AuthPolicy", policy("0 0 8 * * *")).await.unwrap_err();
    assert!(err.contains(CEL_MESSAGE), "{err}");
    ns.delete().await.ok();
}
