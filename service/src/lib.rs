//! The mailagent workload: one backend behind three doors (REST, A2A, MCP).
