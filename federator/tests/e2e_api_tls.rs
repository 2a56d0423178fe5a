//! The gRPC registry API over mutual TLS: a client with a certificate from the configured CA
//! reads the registry (and a standalone DNS server follows it), every other client is
//! refused in the handshake.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use federator::api::ApiTls;
use federator::api::pb::GetServiceRequest;
use federator::api::pb::registry_client::RegistryClient;
use support::live::{Federator, deploy, dig, eventually, fleet};
use support::replica::Replica;
use testenv::istio::MeshPki;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const HOST: &str = "prod.app.global";

/// Asks for `HOST` over `channel`; the status code when refused.
async fn get(channel: Result<Channel, tonic::transport::Error>) -> Result<String, String> {
    let channel = channel.map_err(|e| format!("connect: {e}"))?;
    RegistryClient::new(channel)
        .get_service(GetServiceRequest { host: HOST.into() })
        .await
        .map(|r| r.into_inner().vip)
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

async fn connect(
    url: String,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(url)?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    endpoint.connect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_with_a_certificate_from_the_ca_read_the_registry() {
    let env = fleet(&["config", "east"], &["east"]).await;
    deploy(env.cluster("east"), "app", 1, 0).await;
    let pki = MeshPki::new().unwrap();
    let (server_cert, server_key) = pki.loopback_leaf("federator").unwrap();
    let (client_cert, client_key) = pki.loopback_leaf("reader").unwrap();
    let stranger = MeshPki::new().unwrap();
    let (other_cert, other_key) = stranger.loopback_leaf("stranger").unwrap();
    let federator = Federator::start_with(&env, |o| {
        o.api_tls = Some(ApiTls {
            cert: server_cert.clone().into_bytes(),
            key: server_key.clone().into_bytes(),
            client_ca: Some(pki.root_pem().as_bytes().to_vec()),
        });
    })
    .await;
    let url = format!("https://{}", federator.grpc);
    let ca = || ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki.root_pem()));

    let trusted = || ca().identity(Identity::from_pem(&client_cert, &client_key));
    eventually(
        "a client with the CA's certificate reads the host",
        || async {
            get(connect(url.clone(), Some(trusted())).await)
                .await
                .is_ok_and(|vip| !vip.is_empty())
        },
    )
    .await;
    let refused = [
        (
            "no client certificate",
            connect(url.clone(), Some(ca())).await,
        ),
        (
            "a certificate of another CA",
            connect(
                url.clone(),
                Some(ca().identity(Identity::from_pem(&other_cert, &other_key))),
            )
            .await,
        ),
        (
            "plain text",
            connect(format!("http://{}", federator.grpc), None).await,
        ),
    ];
    for (who, channel) in refused {
        let answer = get(channel).await;
        assert!(answer.is_err(), "{who}: read the registry: {answer:?}");
    }

    // A standalone DNS server follows it with the client certificate.
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let (ca_file, cert_file, key_file) = (
        write("ca.pem", pki.root_pem()),
        write("client.pem", &client_cert),
        write("client-key.pem", &client_key),
    );
    let standalone = Replica::dns_upstream(
        &url,
        &[
            "--upstream-ca-file",
            &ca_file,
            "--upstream-cert-file",
            &cert_file,
            "--upstream-key-file",
            &key_file,
        ],
    );
    let wanted = dig(federator.dns, HOST, &[]).await;
    eventually("the standalone DNS answers over mutual TLS", || async {
        dig(standalone.dns, HOST, &[]).await == wanted
    })
    .await;
    assert_eq!(wanted.0, "NOERROR");
}
