//! Rendering of v1.0 task objects in the v0.3 wire shape (`kind` discriminators, lower-case
//! kebab states, `role: "agent"`), and of the agent card in the v0.3 card shape (top-level `url`,
//! OpenAPI-style security), for clients that send no `A2A-Version`.

use serde_json::{Value, json};

pub fn task(task: &Value) -> Value {
    let mut out = task.clone();
    out["kind"] = json!("task");
    if let Some(state) = task.pointer("/status/state").and_then(Value::as_str) {
        out["status"]["state"] = json!(state.trim_start_matches("TASK_STATE_").to_ascii_lowercase().replace('_', "-"));
    }
    if let Some(message) = task.pointer("/status/message") {
        out["status"]["message"] = self::message(message);
    }
    if let Some(artifacts) = task.get("artifacts").and_then(Value::as_array) {
        out["artifacts"] = artifacts
            .iter()
            .map(|a| {
                let mut a = a.clone();
                a["parts"] = parts(&a["parts"]);
                a
            })
            .collect();
    }
    if let Some(history) = task.get("history").and_then(Value::as_array) {
        out["history"] = history.iter().map(message).collect();
    }
    out
}

/// A v1.0 card in the v0.3 shape: `url`/`preferredTransport`/`protocolVersion` from the first
/// interface, `supportsAuthenticatedExtendedCard`, and security schemes and requirements in the
/// OpenAPI style v0.3 used (`{"type": "apiKey", "in": "header"}`, `[{"name": [scopes]}]`).
pub fn card(card: &Value) -> Value {
    let interface = card.pointer("/supportedInterfaces/0").cloned().unwrap_or(Value::Null);
    let schemes: serde_json::Map<String, Value> = card
        .get("securitySchemes")
        .and_then(Value::as_object)
        .map(|schemes| schemes.iter().map(|(name, scheme)| (name.clone(), security_scheme(scheme))).collect())
        .unwrap_or_default();
    let skills: Vec<Value> = card
        .get("skills")
        .and_then(Value::as_array)
        .map(|skills| {
            skills
                .iter()
                .map(|skill| {
                    let mut skill = skill.clone();
                    if let Some(obj) = skill.as_object_mut()
                        && let Some(requirements) = obj.remove("securityRequirements")
                    {
                        obj.insert("security".into(), security(&requirements));
                    }
                    skill
                })
                .collect()
        })
        .unwrap_or_default();
    let capabilities = card.get("capabilities").cloned().unwrap_or(json!({}));
    json!({
        "name": card["name"],
        "description": card["description"],
        "version": card["version"],
        "protocolVersion": "0.3.0",
        "url": interface["url"],
        "preferredTransport": interface["protocolBinding"],
        "capabilities": {
            "streaming": capabilities["streaming"],
            "pushNotifications": capabilities["pushNotifications"],
        },
        "supportsAuthenticatedExtendedCard": capabilities["extendedAgentCard"],
        "defaultInputModes": card["defaultInputModes"],
        "defaultOutputModes": card["defaultOutputModes"],
        "skills": skills,
        "securitySchemes": schemes,
        "security": security(&card["securityRequirements"]),
    })
}

fn security_scheme(scheme: &Value) -> Value {
    if let Some(api_key) = scheme.get("apiKeySecurityScheme") {
        json!({"type": "apiKey", "in": api_key["location"], "name": api_key["name"], "description": api_key["description"]})
    } else if let Some(http) = scheme.get("httpAuthSecurityScheme") {
        let scheme = http["scheme"].as_str().unwrap_or("bearer").to_ascii_lowercase();
        json!({"type": "http", "scheme": scheme, "bearerFormat": http["bearerFormat"], "description": http["description"]})
    } else {
        scheme.clone()
    }
}

/// `[{"schemes": {"name": {"list": [scopes]}}}]` to `[{"name": [scopes]}]`.
fn security(requirements: &Value) -> Value {
    requirements
        .as_array()
        .map(|requirements| {
            requirements
                .iter()
                .map(|requirement| {
                    let schemes = requirement.get("schemes").and_then(Value::as_object);
                    let entry: serde_json::Map<String, Value> = schemes
                        .map(|schemes| {
                            schemes
                                .iter()
                                .map(|(name, scopes)| (name.clone(), scopes.get("list").cloned().unwrap_or(json!([]))))
                                .collect()
                        })
                        .unwrap_or_default();
                    Value::Object(entry)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn message(message: &Value) -> Value {
    let mut out = message.clone();
    out["kind"] = json!("message");
    let role = message.get("role").and_then(Value::as_str).unwrap_or("ROLE_AGENT");
    out["role"] = json!(role.trim_start_matches("ROLE_").to_ascii_lowercase());
    out["parts"] = parts(&message["parts"]);
    out
}

fn parts(parts: &Value) -> Value {
    parts
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    let kind = if p.get("data").is_some() {
                        "data"
                    } else if p.get("text").is_some() {
                        "text"
                    } else {
                        "file"
                    };
                    p["kind"] = json!(kind);
                    p
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_roles_use_v03_spellings() {
        let v1 = json!({"id": "t", "status": {"state": "TASK_STATE_INPUT_REQUIRED", "message": {"role": "ROLE_AGENT", "parts": [{"text": "hi"}]}}, "artifacts": [], "history": []});
        let old = task(&v1);
        assert_eq!(old["kind"], "task");
        assert_eq!(old["status"]["state"], "input-required");
        assert_eq!(old["status"]["message"]["role"], "agent");
        assert_eq!(old["status"]["message"]["parts"][0]["kind"], "text");
    }

    #[test]
    fn card_uses_the_v03_fields_and_openapi_style_security() {
        let v1 = json!({
            "name": "n", "description": "d", "version": "1",
            "supportedInterfaces": [{"url": "http://h/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            "capabilities": {"streaming": false, "pushNotifications": false, "extendedAgentCard": true},
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["application/json"],
            "securitySchemes": {
                "apiKey": {"apiKeySecurityScheme": {"location": "header", "name": "X-API-Key"}},
                "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}},
            },
            "securityRequirements": [{"schemes": {"apiKey": {"list": []}}}, {"schemes": {"bearer": {"list": []}}}],
            "skills": [{"id": "s", "name": "S", "description": "x", "tags": [],
                        "securityRequirements": [{"schemes": {"bearer": {"list": ["mail:scan"]}}}]}],
        });
        let old = card(&v1);
        assert_eq!(old["url"], "http://h/a2a");
        assert_eq!(old["preferredTransport"], "JSONRPC");
        assert_eq!(old["protocolVersion"], "0.3.0");
        assert_eq!(old["supportsAuthenticatedExtendedCard"], true);
        assert_eq!(old["securitySchemes"]["apiKey"]["type"], "apiKey");
        assert_eq!(old["securitySchemes"]["apiKey"]["in"], "header");
        assert_eq!(old["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(old["security"], json!([{"apiKey": []}, {"bearer": []}]));
        assert_eq!(old["skills"][0]["security"], json!([{"bearer": ["mail:scan"]}]));
        assert!(old["skills"][0].get("securityRequirements").is_none());
    }
}
