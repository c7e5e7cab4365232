//! Certificates of the node: one node CA signs the kubelet's client certificate (its identity
//! `system:node:<name>` to the API server), the kubelet's serving certificate, and the API server's
//! client certificate towards the kubelet (logs, exec, port-forward). The controller manager signs
//! CertificateSigningRequests with the same CA. Written to the plane's private `pki` directory only.

use std::path::Path;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};

use crate::pki::{ca, write_private};

/// File names in the `pki` directory.
pub mod files {
    pub const CA: &str = "node-ca.crt";
    pub const CA_KEY: &str = "node-ca.key";
    pub const NODE_CERT: &str = "node.crt";
    pub const NODE_KEY: &str = "node.key";
    pub const KUBELET_CERT: &str = "kubelet.crt";
    pub const KUBELET_KEY: &str = "kubelet.key";
    pub const APISERVER_KUBELET_CERT: &str = "apiserver-kubelet-client.crt";
    pub const APISERVER_KUBELET_KEY: &str = "apiserver-kubelet-client.key";
    /// The API server's serving CA, which pods get as `kube-root-ca.crt`.
    pub const SERVING_CA: &str = "serving-ca.crt";
}

/// Generates the node's certificates into `dir` and adds the node CA to the API server's client CA
/// bundle (`client-ca.crt`, already written), so the kubelet's client certificate authenticates.
pub fn write(dir: &Path, node_name: &str, node_ip: &str, serving_ca_pem: &str) -> anyhow::Result<()> {
    let (ca_pem, issuer) = ca("mailagent-test-node-ca")?;
    let client = |cn: &str, org: &str| -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.distinguished_name.push(DnType::OrganizationName, org);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        Ok((params.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
    };
    let (node_cert, node_key) = client(&format!("system:node:{node_name}"), "system:nodes")?;
    // The API server acts as an admin towards the kubelet (which asks the API server to authorize).
    let (apiserver_cert, apiserver_key) = client("kube-apiserver-kubelet-client", "system:masters")?;

    let serving_key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(vec![node_name.to_owned(), node_ip.to_owned(), "127.0.0.1".to_owned()])?;
    serving.distinguished_name.push(DnType::CommonName, format!("system:node:{node_name}"));
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving.signed_by(&serving_key, &issuer)?.pem();

    for (name, pem) in [
        (files::CA, ca_pem.as_str()),
        (files::CA_KEY, &issuer.key().serialize_pem()),
        (files::NODE_CERT, &node_cert),
        (files::NODE_KEY, &node_key),
        (files::KUBELET_CERT, &serving_cert),
        (files::KUBELET_KEY, &serving_key.serialize_pem()),
        (files::APISERVER_KUBELET_CERT, &apiserver_cert),
        (files::APISERVER_KUBELET_KEY, &apiserver_key),
        (files::SERVING_CA, serving_ca_pem),
    ] {
        write_private(&dir.join(name), pem)?;
    }
    let bundle = dir.join("client-ca.crt");
    let existing = std::fs::read_to_string(&bundle)?;
    write_private(&bundle, &format!("{existing}{ca_pem}"))?;
    Ok(())
}
