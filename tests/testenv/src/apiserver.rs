use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

use crate::ports::free_port;
use crate::process::Process;
use crate::{TestEnvError, kubeconfig};

/// How long one kube-apiserver may take to report ready. Generous: on 2 cores several
/// start at once.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A running kube-apiserver for one simulated cluster.
pub(crate) struct ApiServer {
    pub(crate) process: Process,
    pub(crate) port: u16,
    pub(crate) kubeconfig: PathBuf,
    /// The CA of its (self-signed) serving certificate.
    pub(crate) ca: PathBuf,
    pub(crate) client: kube::Client,
}

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes the service-account signing key (ECDSA P-256, PKCS#8) to `private` and its public
/// half (SubjectPublicKeyInfo) to `public`, both PEM.
pub(crate) fn write_service_account_keys(
    private: &Path,
    public: &Path,
) -> Result<(), TestEnvError> {
    let failed = || TestEnvError::Other("generating the service-account key failed".into());
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| failed())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| failed())?;
    let spki: Vec<u8> = P256_SPKI_PREFIX
        .iter()
        .chain(ring::signature::KeyPair::public_key(&pair).as_ref())
        .copied()
        .collect();
    std::fs::write(private, pem("PRIVATE KEY", pkcs8.as_ref()))
        .map_err(TestEnvError::io(format!("writing {}", private.display())))?;
    std::fs::write(public, pem("PUBLIC KEY", &spki))
        .map_err(TestEnvError::io(format!("writing {}", public.display())))
}

/// A random token for the admin user.
pub(crate) fn random_token() -> Result<String, TestEnvError> {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut bytes)
        .map_err(|_| TestEnvError::Other("no randomness for the admin token".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Everything one kube-apiserver start needs.
pub(crate) struct Spec<'a> {
    pub(crate) binary: &'a Path,
    pub(crate) cluster: &'a str,
    pub(crate) dir: &'a Path,
    pub(crate) etcd_url: &'a str,
    pub(crate) token_file: &'a Path,
    pub(crate) token: &'a str,
    pub(crate) service_account_key: &'a Path,
    pub(crate) service_account_public_key: &'a Path,
}

/// Starts a kube-apiserver for `spec.cluster` on a free port, storing under its own etcd
/// prefix, and waits until `/readyz` says ok. Retries when another process takes the port.
pub(crate) async fn start(spec: Spec<'_>) -> Result<ApiServer, TestEnvError> {
    let mut last = None;
    for _ in 0..3 {
        match start_once(&spec).await {
            Err(RaceOrError::LostPortRace(err)) => last = Some(err),
            Err(RaceOrError::Error(err)) => return Err(err),
            Ok(server) => return Ok(server),
        }
    }
    Err(last.unwrap_or_else(|| TestEnvError::Other("kube-apiserver did not start".into())))
}

enum RaceOrError {
    LostPortRace(TestEnvError),
    Error(TestEnvError),
}

impl From<TestEnvError> for RaceOrError {
    fn from(err: TestEnvError) -> Self {
        Self::Error(err)
    }
}

async fn start_once(spec: &Spec<'_>) -> Result<ApiServer, RaceOrError> {
    let cluster = spec.cluster;
    let port = free_port()?;
    let cert_dir = spec.dir.join(format!("{cluster}-certs"));
    let mut command = Command::new(spec.binary);
    command
        .arg(format!("--etcd-servers={}", spec.etcd_url))
        .arg(format!("--etcd-prefix=/clusters/{cluster}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!("--cert-dir={}", cert_dir.display()))
        .arg(format!("--token-auth-file={}", spec.token_file.display()))
        .arg("--authorization-mode=RBAC")
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(format!(
            "--service-account-key-file={}",
            spec.service_account_public_key.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            spec.service_account_key.display()
        ))
        .arg("--service-cluster-ip-range=10.96.0.0/16")
        .arg("--enable-priority-and-fairness=false")
        .arg("--profiling=false")
        .arg("--v=1");
    let mut process = Process::spawn(
        &format!("kube-apiserver of cluster {cluster}"),
        command,
        &spec.dir.join(format!("{cluster}-apiserver.log")),
    )?;
    let server = format!("https://127.0.0.1:{port}");
    let started = Instant::now();
    // The serving certificate appears once the server has generated it.
    let cert = cert_dir.join("apiserver.crt");
    let ca_pem = loop {
        if let Err(err) = process.check_running() {
            return Err(if process.lost_port_race() {
                RaceOrError::LostPortRace(err)
            } else {
                RaceOrError::Error(err)
            });
        }
        if let Ok(pem) = std::fs::read(&cert)
            && !pem.is_empty()
        {
            break pem;
        }
        process.not_ready_after(started, READY_TIMEOUT)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kubeconfig_text = kubeconfig::render(cluster, &server, &ca_pem, spec.token);
    let kubeconfig = spec.dir.join(format!("{cluster}.kubeconfig"));
    std::fs::write(&kubeconfig, &kubeconfig_text).map_err(TestEnvError::io(format!(
        "writing {}",
        kubeconfig.display()
    )))?;
    let client = client_from(cluster, &kubeconfig).await?;
    loop {
        if let Err(err) = process.check_running() {
            return Err(if process.lost_port_race() {
                RaceOrError::LostPortRace(err)
            } else {
                RaceOrError::Error(err)
            });
        }
        let request = http::Request::get("/readyz").body(Vec::new());
        if let Ok(request) = request
            && let Ok(body) = client.request_text(request).await
            && body.trim() == "ok"
        {
            return Ok(ApiServer {
                process,
                port,
                kubeconfig,
                ca: cert,
                client,
            });
        }
        process.not_ready_after(started, READY_TIMEOUT)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl ApiServer {
    /// Starts the stopped server again on the same port with the same certificates and
    /// storage, and waits until it is ready.
    pub(crate) async fn restart(&mut self) -> Result<(), TestEnvError> {
        self.process.restart()?;
        let started = Instant::now();
        loop {
            self.process.check_running()?;
            if let Ok(request) = http::Request::get("/readyz").body(Vec::new())
                && let Ok(body) = self.client.request_text(request).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            self.process.not_ready_after(started, READY_TIMEOUT)?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A client for the cluster a kubeconfig file describes.
pub(crate) async fn client_from(cluster: &str, path: &Path) -> Result<kube::Client, TestEnvError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| {
        TestEnvError::Other(format!(
            "cluster {cluster}: reading {}: {e}",
            path.display()
        ))
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| {
            TestEnvError::Other(format!(
                "cluster {cluster}: kubeconfig {}: {e}",
                path.display()
            ))
        })?;
    kube::Client::try_from(config).map_err(TestEnvError::kube(cluster, "building a client"))
}
