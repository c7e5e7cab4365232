//! Every admission rule, one test each, against the real API server: the invalid object is
//! rejected and the person sees our message, not a stack of schema jargon.

mod support;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_tests::TestNamespace;
use serde_json::{Value, json};

fn agent(spec: Value) -> Value {
    let mut base = json!({"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "p"}, "mailbox": {"provider": "maildir"}});
    merge(&mut base, spec);
    json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "metadata": {"name": "a"}, "spec": base})
}

fn policy(spec: Value) -> Value {
    json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "p"}, "spec": spec})
}

fn merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(into), Value::Object(patch)) => {
            for (k, v) in patch {
                merge(into.entry(k).or_insert(Value::Null), v);
            }
        }
        (into, patch) => *into = patch,
    }
}

/// Sends raw JSON (so values the Rust types would refuse still reach the server).
async fn create_raw<K>(client: &Client, ns: &str, body: &Value) -> Result<(), String>
where
    K: support::Namespaced,
{
    let name = body["metadata"]["name"].as_str().unwrap();
    Api::<K>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply("a-user").force(), &Patch::Apply(body))
        .await
        .map(|_| ())
        .map_err(|e| match e {
            kube::Error::Api(s) => s.message,
            other => other.to_string(),
        })
}

async fn rejected<K>(body: Value, expected: &str)
where
    K: support::Namespaced,
{
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let err = create_raw::<K>(&admin, ns.name(), &body).await.expect_err("the API server must reject this");
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
}

#[tokio::test]
async fn valid_samples_are_accepted() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    for file in ["10-authpolicy.yaml", "20-mailagent.yaml", "oauth/10-authpolicy-oauth.yaml"] {
        let path = format!("{}/../hack/samples/{file}", env!("CARGO_MANIFEST_DIR"));
        let mut doc: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        doc["metadata"]["namespace"] = json!(ns.name());
        if file.starts_with("oauth/") {
            // The variant replaces team-auth; here it sits beside it.
            doc["metadata"]["name"] = json!("team-auth-oauth");
        }
        let result = if doc["kind"] == "AuthPolicy" {
            create_raw::<AuthPolicy>(&admin, ns.name(), &doc).await
        } else {
            create_raw::<MailAgent>(&admin, ns.name(), &doc).await
        };
        result.unwrap_or_else(|e| panic!("{file} rejected: {e}"));
    }
}

#[tokio::test]
async fn oauth_needs_an_https_resource_server_url() {
    rejected::<MailAgent>(agent(json!({"mcp": {"authMode": "oauth"}})), "mcp.authMode oauth needs resourceServerUrl")
        .await;
    rejected::<MailAgent>(
        agent(json!({"mcp": {"authMode": "oauth", "resourceServerUrl": "http://mail.example.com/mcp"}})),
        "mcp.authMode oauth needs resourceServerUrl",
    )
    .await;
    // The workload compares the resource byte for byte and refuses a trailing slash at start
    // (issue 8 round trip); admission says so first.
    rejected::<MailAgent>(
        agent(json!({"mcp": {"authMode": "oauth", "resourceServerUrl": "https://mail.example.com/mcp/"}})),
        "without a trailing slash",
    )
    .await;
}

/// Issue 8 round trip: a burst of 0 was admitted and served as 1; now neither side takes it.
#[tokio::test]
async fn a_burst_counts_the_request_itself() {
    rejected::<MailAgent>(agent(json!({"rateLimit": {"burst": 0}})), "spec.rateLimit.burst").await;
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    create_raw::<MailAgent>(&admin, ns.name(), &agent(json!({"rateLimit": {"perMinute": 1, "burst": 1}})))
        .await
        .unwrap();
}

#[tokio::test]
async fn policy_oauth_mode_needs_its_settings_and_https() {
    rejected::<AuthPolicy>(
        policy(json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "mcp": {"mode": "oauth"}})),
        "mcp.mode oauth needs mcp.oauth",
    )
    .await;
    let oauth = json!({"issuer": "http://issuer.example.com", "resource": "https://m.example.com/mcp"});
    rejected::<AuthPolicy>(
        policy(json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "mcp": {"mode": "oauth", "oauth": oauth}})),
        "oauth.issuer must be an https:// URL",
    )
    .await;
    let oauth = json!({"issuer": "https://issuer.example.com", "resource": "https://m.example.com/mcp/"});
    rejected::<AuthPolicy>(
        policy(json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "mcp": {"mode": "oauth", "oauth": oauth}})),
        "oauth.resource must be an https:// URL without a fragment or trailing slash",
    )
    .await;
    let with = |extra: serde_json::Value| {
        let mut oauth = json!({"issuer": "https://issuer.example.com", "resource": "https://m.example.com/mcp"});
        oauth.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        policy(json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "mcp": {"mode": "oauth", "oauth": oauth}}))
    };
    rejected::<AuthPolicy>(
        with(json!({"audiences": ["https://old.example.com/mcp", "http://plain.example.com/mcp"]})),
        "oauth.audiences must be https:// URLs without a fragment or trailing slash",
    )
    .await;
    rejected::<AuthPolicy>(
        with(json!({"resourceDocumentation": "http://docs.example.com"})),
        "oauth.resourceDocumentation must be an https:// URL",
    )
    .await;
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let valid = with(
        json!({"audiences": ["https://old.example.com/mcp"], "resourceDocumentation": "https://docs.example.com"}),
    );
    create_raw::<AuthPolicy>(&admin, ns.name(), &valid).await.unwrap();
}

/// A key reaches a pod's mounted Secret up to `propagation` late (default 2m: a default kubelet
/// resyncs every 60 to 90 s), so the overlap must cover it and `every` must leave room for both.
#[tokio::test]
async fn the_overlap_and_the_period_leave_room_for_the_propagation() {
    let with = |rotation: serde_json::Value| {
        policy(json!({"mode": "jwt", "jwt": {"audiences": ["a"], "maxTokenLifetime": "1m"}, "rotation": rotation}))
    };
    rejected::<AuthPolicy>(
        with(json!({"every": "10m", "overlap": "1m"})),
        "rotation.overlap must be at least rotation.propagation (default 2m)",
    )
    .await;
    rejected::<AuthPolicy>(
        with(json!({"every": "3m", "overlap": "2m", "propagation": "90s"})),
        "rotation.every must be at least overlap + propagation",
    )
    .await;
    for propagation in ["5s", "16m"] {
        rejected::<AuthPolicy>(
            with(json!({"every": "1h", "overlap": "20m", "propagation": propagation})),
            "rotation.propagation must be between 10s and 15m",
        )
        .await;
    }
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let fast_kubelets = with(json!({"every": "2m", "overlap": "1m", "propagation": "20s"}));
    create_raw::<AuthPolicy>(&admin, ns.name(), &fast_kubelets).await.unwrap();
}

#[tokio::test]
async fn overlap_must_be_shorter_than_the_rotation_period() {
    let spec = json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "rotation": {"every": "1h", "overlap": "2h"}});
    rejected::<AuthPolicy>(policy(spec), "rotation.overlap must be shorter than rotation.every").await;
}

#[tokio::test]
async fn overlap_needs_at_least_two_valid_keys() {
    let spec = json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "rotation": {"every": "720h", "overlap": "24h", "maxValidKeys": 1}});
    rejected::<AuthPolicy>(policy(spec), "rotation.maxValidKeys must be at least 2 when overlap is set").await;
}

#[tokio::test]
async fn rotation_needs_exactly_one_of_every_and_schedule() {
    let both =
        json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "rotation": {"every": "720h", "schedule": "0 3 1 * *"}});
    rejected::<AuthPolicy>(policy(both), "rotation needs exactly one of every").await;
    let neither = json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "rotation": {"overlap": "1h"}});
    rejected::<AuthPolicy>(policy(neither), "rotation needs exactly one of every").await;
}

#[tokio::test]
async fn schedules_must_parse() {
    rejected::<MailAgent>(agent(json!({"schedules": {"digest": "every monday"}})), "must be a cron expression").await;
    let rotation = json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "rotation": {"schedule": "soon"}});
    rejected::<AuthPolicy>(policy(rotation), "must be a cron expression").await;
}

#[tokio::test]
async fn durations_must_parse() {
    let spec = json!({"mode": "jwt", "jwt": {"audiences": ["a"]}, "rotation": {"every": "a month"}});
    rejected::<AuthPolicy>(policy(spec), "rotation.every").await;
}

#[tokio::test]
async fn more_than_one_replica_needs_shared_storage() {
    rejected::<MailAgent>(agent(json!({"replicas": 2})), "replicas above 1 need storage.accessMode ReadWriteMany")
        .await;
}

#[tokio::test]
async fn scopes_come_only_from_the_matrix() {
    let spec = json!({"mode": "api_key", "apiKeys": [{"name": "ci", "scopes": ["mail:send"]}]});
    rejected::<AuthPolicy>(policy(spec), "Unsupported value: \"mail:send\"").await;
}

#[tokio::test]
async fn client_scopes_stay_within_the_policy_scopes() {
    let spec = json!({"mode": "api_key", "scopes": ["mail:scan"], "apiKeys": [{"name": "ci", "scopes": ["unsubscribe:execute"]}]});
    rejected::<AuthPolicy>(policy(spec), "every apiKeys client scope must also be listed in scopes").await;
}

#[tokio::test]
async fn enum_values_only() {
    rejected::<MailAgent>(agent(json!({"mailbox": {"provider": "imap"}})), "Unsupported value: \"imap\"").await;
    rejected::<AuthPolicy>(policy(json!({"mode": "basic"})), "Unsupported value: \"basic\"").await;
    rejected::<MailAgent>(agent(json!({"mcp": {"authMode": "none"}})), "Unsupported value: \"none\"").await;
}

#[tokio::test]
async fn jwt_and_hybrid_need_jwt_settings_and_key_modes_need_clients() {
    rejected::<AuthPolicy>(
        policy(json!({"mode": "hybrid", "apiKeys": [{"name": "ci", "scopes": ["mail:scan"]}]})),
        "jwt settings are required",
    )
    .await;
    rejected::<AuthPolicy>(policy(json!({"mode": "api_key"})), "at least one apiKeys client is required").await;
}

#[tokio::test]
async fn hmac_and_asymmetric_algorithms_do_not_mix() {
    let spec = json!({"mode": "jwt", "jwt": {"audiences": ["a"], "algorithms": ["HS256", "RS256"]}});
    rejected::<AuthPolicy>(policy(spec), "must not mix HMAC").await;
}

#[tokio::test]
async fn clock_skew_is_bounded() {
    let spec = json!({"mode": "jwt", "jwt": {"audiences": ["a"], "clockSkew": "1h"}});
    rejected::<AuthPolicy>(policy(spec), "jwt.clockSkew must be between 0s and 5m").await;
}

#[tokio::test]
async fn gmail_needs_credentials() {
    rejected::<MailAgent>(
        agent(json!({"mailbox": {"provider": "gmail"}})),
        "the gmail provider needs credentialsSecretRef",
    )
    .await;
}

#[tokio::test]
async fn a_quota_group_is_for_gmail_and_well_named() {
    rejected::<MailAgent>(
        agent(json!({"mailbox": {"provider": "maildir", "quota": {"group": "acme"}}})),
        "quota applies to the gmail provider only",
    )
    .await;
    let gmail = |quota: serde_json::Value| {
        agent(json!({"mailbox": {"provider": "gmail", "credentialsSecretRef": {"name": "c"}, "quota": quota}}))
    };
    rejected::<MailAgent>(gmail(json!({"group": "Not A Name"})), "spec.mailbox.quota.group").await;
    rejected::<MailAgent>(gmail(json!({"groupUnitsPerMinute": 99})), "spec.mailbox.quota.groupUnitsPerMinute").await;
}

#[tokio::test]
async fn some_surface_must_be_served() {
    rejected::<MailAgent>(
        agent(json!({"surfaces": {"rest": false, "a2a": false, "mcp": false}})),
        "at least one surface",
    )
    .await;
}

#[tokio::test]
async fn the_image_is_required() {
    rejected::<MailAgent>(agent(json!({"image": ""})), "image must not be empty").await;
}

#[tokio::test]
async fn storage_access_mode_and_class_are_immutable() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    create_raw::<MailAgent>(&admin, ns.name(), &agent(json!({"storage": {"storageClassName": "fast"}}))).await.unwrap();
    let err = create_raw::<MailAgent>(
        &admin,
        ns.name(),
        &agent(json!({"storage": {"accessMode": "ReadWriteMany", "storageClassName": "fast"}})),
    )
    .await
    .unwrap_err();
    assert!(err.contains("storage.accessMode is immutable"), "{err}");
    let err = create_raw::<MailAgent>(&admin, ns.name(), &agent(json!({"storage": {"storageClassName": "slow"}})))
        .await
        .unwrap_err();
    assert!(err.contains("storage.storageClassName is immutable"), "{err}");
    // A mutable field still changes.
    create_raw::<MailAgent>(&admin, ns.name(), &agent(json!({"storage": {"storageClassName": "fast", "size": "2Gi"}})))
        .await
        .unwrap();
}
