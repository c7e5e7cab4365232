//! Finished A2A tasks kept in memory for `GetTask` / `ListTasks`, visible only to the principal that
//! created them, bounded so a busy caller cannot grow memory without limit.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::Value;

const MAX_TASKS: usize = 1000;

#[derive(Default)]
pub struct TaskStore {
    tasks: Mutex<VecDeque<(String, Value)>>,
}

impl std::fmt::Debug for TaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskStore")
    }
}

impl TaskStore {
    pub fn insert(&self, owner: &str, task: Value) {
        let mut tasks = self.tasks.lock().expect("task lock");
        if tasks.len() == MAX_TASKS {
            tasks.pop_front();
        }
        tasks.push_back((owner.to_owned(), task));
    }

    pub fn get(&self, owner: &str, id: &str) -> Option<Value> {
        let tasks = self.tasks.lock().expect("task lock");
        tasks.iter().rev().find(|(o, t)| o == owner && t["id"] == id).map(|(_, t)| t.clone())
    }

    /// Newest first, optionally only one context.
    pub fn list(&self, owner: &str, context_id: Option<&str>) -> Vec<Value> {
        let tasks = self.tasks.lock().expect("task lock");
        tasks
            .iter()
            .rev()
            .filter(|(o, t)| o == owner && context_id.is_none_or(|c| t["contextId"] == c))
            .map(|(_, t)| t.clone())
            .collect()
    }
}
