//! istiod's validation webhook, registered with the cluster's API server.
//!
//! istiod rewrites (caBundle, failurePolicy) only the ValidatingWebhookConfigurations labelled
//! `istio.io/rev=<its revision>`; the harness's carries no such label, so istiod leaves it as
//! written. The API server calls `https://localhost:<webhook port>/validate` and trusts the
//! mesh root: istiod's webhook certificate is signed by the cluster's intermediate (served
//! with its chain) and names `localhost` (`ISTIOD_CUSTOM_HOST`).

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::istiod::Istiod;
use crate::TestEnvError;

/// Name of the harness's webhook configuration in every cluster.
pub const WEBHOOK_CONFIGURATION: &str = "federator-testenv-istio-validator";

const LIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A ServiceEntry only istiod's validation rejects (the CRD schema accepts it): an HTTP port
/// without a name is fine for the schema, but istiod requires `STATIC` endpoints to be IPs.
fn invalid_service_entry() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "federator-testenv-webhook-probe", "namespace": "istio-system"},
        "spec": {
            "hosts": ["probe.testenv.invalid"],
            "ports": [{"number": 80, "protocol": "HTTP", "name": "http"}],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "endpoints": [{"address": "not-an-ip.example"}],
        },
    })
}

impl Istiod {
    /// Registers istiod's validation webhook for every `networking.istio.io` resource
    /// (CREATE, UPDATE; `failurePolicy: Fail`) and waits until the API server really calls
    /// it: a dry-run create of an invalid ServiceEntry must be denied with istiod's message.
    pub async fn register_validation_webhook(&self) -> Result<(), TestEnvError> {
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(self.ca.root_pem());
        let config = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {
                "name": WEBHOOK_CONFIGURATION,
                "labels": {"app.kubernetes.io/managed-by": "federator-testenv"},
            },
            "webhooks": [{
                "name": "validation.testenv.istio.io",
                "clientConfig": {
                    "url": format!("https://localhost:{}/validate", self.webhook_port()),
                    "caBundle": ca_bundle,
                },
                "rules": [{
                    "apiGroups": ["networking.istio.io"],
                    "apiVersions": ["*"],
                    "resources": ["*"],
                    "operations": ["CREATE", "UPDATE"],
                    "scope": "*",
                }],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }],
        });
        self.apply(&config).await?;
        let probe = invalid_service_entry();
        let started = Instant::now();
        loop {
            let answer = self.dry_run_create(&probe).await;
            match &answer {
                Err(message)
                    if message.contains("validation.testenv.istio.io")
                        && message.contains("denied") =>
                {
                    return Ok(());
                }
                _ if started.elapsed() > LIVE_TIMEOUT => {
                    return Err(TestEnvError::Other(format!(
                        "cluster {}: istiod's validation webhook is not live after {LIVE_TIMEOUT:?}; \
                         a dry-run create of an invalid ServiceEntry gave {answer:?}",
                        self.cluster
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Asks istiod's webhook directly (an `AdmissionReview` POSTed to
    /// `https://localhost:<port>/validate`, trusting the mesh root) whether it would admit
    /// `object` (an Istio config object as JSON). `Err` holds istiod's reason.
    pub async fn validate(&self, object: &Value) -> Result<(), String> {
        let uri: http::Uri = format!("https://localhost:{}", self.webhook_port())
            .parse()
            .map_err(|e| format!("webhook address: {e}"))?;
        let mut config = kube::Config::new(uri);
        config.root_cert = Some(vec![self.ca.root_der().to_vec()]);
        let client = kube::Client::try_from(config).map_err(|e| format!("webhook client: {e}"))?;
        let review = admission_review(object);
        let body = serde_json::to_vec(&review).map_err(|e| e.to_string())?;
        let request = http::Request::post("/validate")
            .header("content-type", "application/json")
            .body(body)
            .map_err(|e| e.to_string())?;
        let text = client
            .request_text(request)
            .await
            .map_err(|e| format!("calling istiod's webhook: {e}"))?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if answer["response"]["allowed"] == true {
            Ok(())
        } else {
            Err(answer["response"]["result"]["message"]
                .as_str()
                .unwrap_or(&text)
                .to_owned())
        }
    }

    async fn apply(&self, object: &Value) -> Result<Value, TestEnvError> {
        crate::json::apply_json_with(&self.client, &self.cluster, object).await
    }

    async fn dry_run_create(&self, object: &Value) -> Result<(), String> {
        crate::json::dry_run_create_with(&self.client, &self.cluster, object).await
    }
}

/// An `admission.k8s.io/v1` AdmissionReview asking to create `object`.
fn admission_review(object: &Value) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or_default();
    let lower = kind.to_ascii_lowercase();
    let resource = match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "federator-testenv"},
            "object": object,
            "dryRun": true,
        },
    })
}
