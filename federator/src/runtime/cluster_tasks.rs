//! The tasks that run beside a connected cluster's watchers: its probe, the report of
//! when its lists are in, and the stopping of its writer.

use std::time::Duration;

use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, info_span};

use super::manager::ClusterEvent;
use crate::clusters::health::Observation;
use crate::model::ClusterName;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Stops a writer and waits until it has: no write of it lands after.
pub(super) async fn stop_writer(writer: Option<JoinHandle<()>>) {
    if let Some(writer) = writer {
        writer.abort();
        let _ = writer.await;
    }
}

/// Reports when a cluster's lists are in the registry.
pub(super) fn spawn_listed(
    cluster: ClusterName,
    generation: u64,
    mut synced: watch::Receiver<bool>,
    tx: mpsc::Sender<ClusterEvent>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if synced.wait_for(|s| *s).await.is_ok() {
            let _ = tx
                .send(ClusterEvent {
                    cluster,
                    generation,
                    observation: Observation::Listed,
                })
                .await;
        }
    })
}

pub(super) fn spawn_probe(
    cluster: ClusterName,
    generation: u64,
    client: Client,
    interval: Duration,
    tx: mpsc::Sender<ClusterEvent>,
) -> JoinHandle<()> {
    let span = info_span!("probe", cluster = %cluster);
    tokio::spawn(
        async move {
            loop {
                let observation =
                    match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
                        Ok(Ok(_)) => Observation::Answered,
                        Ok(Err(err)) => {
                            Observation::NoAnswer(crate::connect::describe::kube_error(&err))
                        }
                        Err(_) => {
                            Observation::NoAnswer(format!("no answer within {PROBE_TIMEOUT:?}"))
                        }
                    };
                let event = ClusterEvent {
                    cluster: cluster.clone(),
                    generation,
                    observation,
                };
                if tx.send(event).await.is_err() {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
        }
        .instrument(span),
    )
}
