//! Rendering of v1.0 task objects in the v0.3 wire shape (`kind` discriminators, lower-case
//! kebab states, `role: "agent"`), for clients that send no `A2A-Version`.

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
}
