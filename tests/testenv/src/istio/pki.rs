//! The test mesh's PKI, as every real multi-cluster Istio install sets it up ("plug-in CA"):
//! one root CA for the mesh, one intermediate CA per cluster (given to that cluster's istiod
//! as `cacerts`), so workloads of all clusters trust each other through the shared root.
//!
//! Keys are ECDSA P-256 (istiod accepts PKCS#8 `PRIVATE KEY` PEM for its CA key).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::TestEnvError;

/// Istio's default trust domain, the one in every SPIFFE identity of the test mesh.
pub const TRUST_DOMAIN: &str = "cluster.local";

fn pki_error(what: &str) -> impl FnOnce(rcgen::Error) -> TestEnvError + '_ {
    move |e| TestEnvError::Other(format!("mesh PKI: {what}: {e}"))
}

/// Validity from last year to ten years ahead (certificates must not be "from the future"
/// for Go or BoringSSL, and must outlive any test).
fn validity(params: &mut CertificateParams) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let year = 1970 + i32::try_from(now / 31_556_952).unwrap_or(56);
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

fn ca_params(common_name: &str, organization: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, organization);
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    params
}

/// The mesh's root CA. Every cluster's intermediate is signed by it.
pub struct MeshPki {
    issuer: Issuer<'static, KeyPair>,
    root_pem: String,
    root_der: Vec<u8>,
}

impl std::fmt::Debug for MeshPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshPki").finish_non_exhaustive()
    }
}

impl MeshPki {
    /// A fresh root CA (`O=federator-testenv, CN=Root CA`).
    pub fn new() -> Result<Self, TestEnvError> {
        let key = KeyPair::generate().map_err(pki_error("generating the root key"))?;
        let params = ca_params("Root CA", "federator-testenv");
        let cert = params
            .self_signed(&key)
            .map_err(pki_error("signing the root"))?;
        Ok(Self {
            root_pem: cert.pem(),
            root_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The root certificate (PEM): the trust anchor of every workload and of istiod's webhook.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// A certificate and its key (PEM) signed by the root for `127.0.0.1` and `localhost`,
    /// good for TLS servers and clients alike (`CN=<name>`): for testing TLS on loopback.
    pub fn loopback_leaf(&self, name: &str) -> Result<(String, String), TestEnvError> {
        let key = KeyPair::generate().map_err(pki_error("generating a leaf key"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![
            SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
            SanType::DnsName("localhost".try_into().map_err(pki_error("a DNS name"))?),
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(pki_error("signing a leaf"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A new intermediate CA for `cluster` (`CN=Intermediate CA <cluster>`), signed by the root.
    pub fn cluster_ca(&self, cluster: &str) -> Result<ClusterCa, TestEnvError> {
        let key = KeyPair::generate().map_err(pki_error("generating an intermediate key"))?;
        let params = ca_params(&format!("Intermediate CA {cluster}"), cluster);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(pki_error("signing an intermediate"))?;
        Ok(ClusterCa {
            cluster: cluster.to_owned(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            root_pem: self.root_pem.clone(),
            root_der: self.root_der.clone(),
            issuer: Issuer::new(params, key),
        })
    }
}

/// One cluster's intermediate CA: istiod's signing CA there, and the issuer of the
/// certificates the harness gives that cluster's workloads.
pub struct ClusterCa {
    cluster: String,
    cert_pem: String,
    key_pem: String,
    root_pem: String,
    root_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// The intermediate certificate (PEM), istiod's `ca-cert.pem`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The intermediate's private key (PKCS#8 PEM), istiod's `ca-key.pem`.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The mesh root (PEM), istiod's `root-cert.pem`.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The mesh root (DER).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Intermediate then root (PEM), istiod's `cert-chain.pem` (as Istio's `tools/certs`
    /// Makefile writes it).
    pub fn cert_chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.root_pem)
    }

    /// The four files of Istio's plug-in CA (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`,
    /// `cert-chain.pem`), as the `cacerts` Secret would hold them.
    pub fn cacerts(&self) -> [(&'static str, String); 4] {
        [
            ("ca-cert.pem", self.cert_pem.clone()),
            ("ca-key.pem", self.key_pem.clone()),
            ("root-cert.pem", self.root_pem.clone()),
            ("cert-chain.pem", self.cert_chain_pem()),
        ]
    }

    /// Writes [`ClusterCa::cacerts`] into `dir` (istiod reads `./etc/cacerts`, its
    /// `ROOT_CA_DIR`, relative to its working folder).
    pub fn write_cacerts(&self, dir: &Path) -> Result<(), TestEnvError> {
        std::fs::create_dir_all(dir)
            .map_err(TestEnvError::io(format!("creating {}", dir.display())))?;
        for (name, pem) in self.cacerts() {
            let path = dir.join(name);
            std::fs::write(&path, pem)
                .map_err(TestEnvError::io(format!("writing {}", path.display())))?;
        }
        Ok(())
    }

    /// A workload certificate for service account `sa` of `namespace`, with the SPIFFE URI
    /// SAN `spiffe://cluster.local/ns/<namespace>/sa/<sa>`, signed by this intermediate.
    pub fn workload(&self, namespace: &str, sa: &str) -> Result<WorkloadCert, TestEnvError> {
        let spiffe_id = format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{sa}");
        let key = KeyPair::generate().map_err(pki_error("generating a workload key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(
            spiffe_id
                .clone()
                .try_into()
                .map_err(pki_error("a SPIFFE identity"))?,
        )];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(pki_error("signing a workload certificate"))?;
        Ok(WorkloadCert {
            spiffe_id,
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
            root_pem: self.root_pem.clone(),
        })
    }
}

/// A workload's identity as Istio's agent would hand it to Envoy over SDS.
#[derive(Debug, Clone)]
pub struct WorkloadCert {
    /// `spiffe://cluster.local/ns/<ns>/sa/<sa>`.
    pub spiffe_id: String,
    /// Leaf then the cluster's intermediate (PEM), Istio's `default` secret.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The mesh root (PEM), Istio's `ROOTCA` secret.
    pub root_pem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_chains_lead_to_the_shared_root() {
        let pki = MeshPki::new().unwrap();
        let east = pki.cluster_ca("east").unwrap();
        let west = pki.cluster_ca("west").unwrap();
        assert_eq!(east.root_pem(), west.root_pem());
        assert_ne!(east.cert_pem(), west.cert_pem());
        let cert = east.workload("demo", "prod").unwrap();
        assert_eq!(cert.spiffe_id, "spiffe://cluster.local/ns/demo/sa/prod");
        assert_eq!(cert.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(cert.chain_pem.ends_with(east.cert_pem()));
        assert!(east.cert_chain_pem().ends_with(pki.root_pem()));
        assert!(cert.key_pem.contains("BEGIN PRIVATE KEY"));
    }
}
