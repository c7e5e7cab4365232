//! Certificates for the local control plane, generated fresh for each start (never written
//! anywhere but the plane's private temporary directory, never printed).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// PEM documents for one control plane.
pub struct Pki {
    /// CA that signed the API server's serving certificate (clients trust it).
    pub serving_ca_pem: String,
    /// The API server's serving certificate (SANs localhost, 127.0.0.1, the Service and node addresses) and key.
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// CA the API server trusts for client certificates (`--client-ca-file`).
    pub client_ca_pem: String,
    /// The admin client certificate (group `system:masters`) and key.
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// Service-account token signing key pair.
    pub sa_key_pem: String,
    pub sa_public_pem: String,
}

impl Pki {
    /// Generates every key and certificate.
    pub fn generate() -> anyhow::Result<Self> {
        let (serving_ca_pem, serving_ca) = ca("mailagent-test-serving-ca")?;
        let serving_key = KeyPair::generate()?;
        // Also the `kubernetes` Service address and the node's address: pods of a local node reach
        // the API server there (see `node`).
        let sans = ["localhost", "127.0.0.1", crate::node::KUBERNETES_SERVICE_IP, crate::node::NODE_IP];
        let mut serving = CertificateParams::new(sans.map(str::to_owned).to_vec())?;
        serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &serving_ca)?;

        let (client_ca_pem, client_ca) = ca("mailagent-test-client-ca")?;
        let admin_key = KeyPair::generate()?;
        let mut admin = CertificateParams::new(Vec::<String>::new())?;
        admin.distinguished_name.push(DnType::CommonName, "mailagent-test-admin");
        admin.distinguished_name.push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &client_ca)?;

        let sa = KeyPair::generate()?;
        Ok(Self {
            serving_ca_pem,
            serving_cert_pem: serving_cert.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            client_ca_pem,
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            sa_key_pem: sa.serialize_pem(),
            sa_public_pem: sa.public_key_pem(),
        })
    }

    /// Writes the files the API server reads into `dir` (mode 0600).
    pub fn write_server_files(&self, dir: &Path) -> std::io::Result<()> {
        for (name, pem) in [
            ("apiserver.crt", &self.serving_cert_pem),
            ("apiserver.key", &self.serving_key_pem),
            ("client-ca.crt", &self.client_ca_pem),
            ("sa.key", &self.sa_key_pem),
            ("sa.pub", &self.sa_public_pem),
        ] {
            write_private(&dir.join(name), pem)?;
        }
        Ok(())
    }
}

pub(crate) fn ca(name: &str) -> anyhow::Result<(String, Issuer<'static, KeyPair>)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let pem = params.self_signed(&key)?.pem();
    Ok((pem, Issuer::new(params, key)))
}

/// Writes a file readable only by this user.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}
