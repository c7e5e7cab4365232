//! kube-controller-manager with only the controllers `make run` needs to look like a cluster:
//! garbage collection of owned objects, namespace deletion, and Deployment -> ReplicaSet -> Pod
//! (the Pods stay Pending: there is no scheduler or kubelet).
//!
//! Tests do not run it: they patch Deployment status themselves, which the deployment controller
//! would overwrite.

use std::path::Path;

/// The controllers to run, by their 1.36 names.
const CONTROLLERS: &str =
    "garbage-collector-controller,namespace-controller,deployment-controller,replicaset-controller";

/// Arguments for a controller manager talking to the API server through the admin `kubeconfig`,
/// serving its own health endpoints on `127.0.0.1:port` with the API server's certificate.
pub fn args(kubeconfig: &Path, certs: &Path, port: u16) -> Vec<String> {
    let kubeconfig = kubeconfig.display();
    vec![
        format!("--kubeconfig={kubeconfig}"),
        // Delegated authentication and authorization of its own endpoints ask the same API server.
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--tls-cert-file={}", certs.join("apiserver.crt").display()),
        format!("--tls-private-key-file={}", certs.join("apiserver.key").display()),
        format!("--controllers={CONTROLLERS}"),
        "--use-service-account-credentials=false".into(),
    ]
}
