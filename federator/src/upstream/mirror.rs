//! The registry as a standalone DNS server knows it: what `Watch` sent, folded into the
//! records DNS answers. Pure: the follow loop feeds events, and publishes only whole batches
//! (an event with a version), so DNS never answers from half a snapshot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use federator_dns::{ClustersetRecord, HostRecord};

use crate::api::pb;

/// What the upstream last sent, as DNS records.
#[derive(Debug, Default)]
pub struct UpstreamMirror {
    records: BTreeMap<String, HostRecord>,
    /// The clusterset services (MCS API), answered as the specification spells them.
    clusterset: BTreeMap<String, ClustersetRecord>,
    /// The version of the last whole batch applied: sent back on reconnect.
    version: String,
}

impl UpstreamMirror {
    /// Applies one event; true when it completed a batch (the records are whole: publish).
    pub fn apply(&mut self, event: pb::WatchEvent) -> bool {
        if event.reset {
            self.records.clear();
            self.clusterset.clear();
            self.version.clear();
        }
        for service in event.upserted {
            self.records.remove(&service.host);
            self.clusterset.remove(&service.host);
            if service.clusterset.is_some() {
                if let Some(record) = clusterset_record(&service) {
                    self.clusterset.insert(service.host, record);
                }
            } else if let Some(record) = record(&service) {
                self.records.insert(service.host, record);
            }
        }
        for host in event.removed {
            self.records.remove(&host);
            self.clusterset.remove(&host);
        }
        if event.version.is_empty() {
            return false;
        }
        self.version = event.version;
        true
    }

    /// The version to resume from (empty before the first whole batch).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The records DNS answers, sorted by host.
    pub fn records(&self) -> Vec<HostRecord> {
        self.records.values().cloned().collect()
    }

    /// The clusterset services DNS answers, sorted by name.
    pub fn clusterset_records(&self) -> Vec<ClustersetRecord> {
        self.clusterset.values().cloned().collect()
    }
}

/// The record of a clusterset service, answered as the embedded server does
/// ([`crate::dns::clusterset_records`]): while an export backs it.
fn clusterset_record(service: &pb::Service) -> Option<ClustersetRecord> {
    let clusterset = service
        .clusterset
        .as_ref()
        .filter(|_| !service.backends.is_empty())?;
    let endpoints = service.backends.iter().flat_map(|b| {
        let id = clusterset.cluster_ids.get(&b.cluster).unwrap_or(&b.cluster);
        b.endpoints.iter().map(move |e| {
            let hostname = Some(e.hostname.as_str()).filter(|h| !h.is_empty());
            (id.as_str(), hostname, e.address.as_str())
        })
    });
    let ports = service
        .ports
        .iter()
        .filter_map(|p| Some((p.name.as_str(), u16::try_from(p.number).ok()?)));
    Some(crate::dns::clusterset_record(
        &service.host,
        clusterset.headless,
        service.vip.parse().ok(),
        ports,
        endpoints,
    ))
}

/// The record of a service, answered as the embedded server does ([`crate::dns::records`]):
/// only a serving host with a VIP.
fn record(service: &pb::Service) -> Option<HostRecord> {
    if !service.serving {
        return None;
    }
    let address = service.vip.parse::<IpAddr>().ok()?;
    Some(HostRecord {
        name: service.host.clone(),
        address,
        ports: service
            .ports
            .iter()
            .filter_map(|p| Some((p.name.clone(), u16::try_from(p.number).ok()?)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(host: &str, vip: &str, serving: bool) -> pb::Service {
        pb::Service {
            host: host.into(),
            vip: vip.into(),
            serving,
            ports: vec![pb::Port {
                name: "http".into(),
                number: 8080,
                protocol: "HTTP".into(),
            }],
            ..Default::default()
        }
    }

    fn event(
        reset: bool,
        upserted: Vec<pb::Service>,
        removed: &[&str],
        version: &str,
    ) -> pb::WatchEvent {
        pb::WatchEvent {
            reset,
            upserted,
            removed: removed.iter().map(|s| s.to_string()).collect(),
            version: version.into(),
        }
    }

    fn names(mirror: &UpstreamMirror) -> Vec<String> {
        mirror.records().into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn a_headless_clusterset_service_is_answered_by_its_endpoints_under_their_cluster_ids() {
        let mut db = service("db.shop.svc.clusterset.local", "240.0.0.9", true);
        db.clusterset = Some(pb::Clusterset {
            headless: true,
            cluster_ids: [("east".to_owned(), "east-1".to_owned())].into(),
        });
        db.backends = vec![pb::Backend {
            cluster: "east".into(),
            endpoints: vec![pb::Endpoint {
                address: "10.1.0.11".into(),
                hostname: "pet-0".into(),
                ..Default::default()
            }],
            ..Default::default()
        }];
        let mut mirror = UpstreamMirror::default();
        mirror.apply(event(true, vec![db], &[], "e.1"));
        assert!(mirror.records().is_empty(), "not answered as a global host");
        let records = mirror.clusterset_records();
        assert!(records[0].headless);
        assert_eq!(
            (
                records[0].members[0].hostname.as_str(),
                records[0].members[0].cluster_id.as_str()
            ),
            ("pet-0", "east-1")
        );
    }

    #[test]
    fn a_snapshot_in_parts_is_whole_only_at_its_version() {
        let mut mirror = UpstreamMirror::default();
        assert!(!mirror.apply(event(
            true,
            vec![service("prod.a.global", "240.0.0.1", true)],
            &[],
            ""
        )));
        assert_eq!(mirror.version(), "");
        assert!(mirror.apply(event(
            false,
            vec![service("prod.b.global", "240.0.0.2", true)],
            &[],
            "e.1"
        )));
        assert_eq!(names(&mirror), ["prod.a.global", "prod.b.global"]);
        assert_eq!(mirror.version(), "e.1");
        assert_eq!(mirror.records()[0].ports, [("http".to_owned(), 8080)]);
    }

    #[test]
    fn deltas_change_and_remove_and_a_reset_forgets_everything() {
        let mut mirror = UpstreamMirror::default();
        mirror.apply(event(
            true,
            vec![
                service("prod.a.global", "240.0.0.1", true),
                service("prod.b.global", "240.0.0.2", true),
            ],
            &[],
            "e.1",
        ));
        // b stops serving (no ready backend): not answered, like the embedded server.
        mirror.apply(event(
            false,
            vec![service("prod.b.global", "240.0.0.2", false)],
            &["prod.a.global"],
            "e.2",
        ));
        assert!(names(&mirror).is_empty());
        mirror.apply(event(
            false,
            vec![service("prod.c.global", "", true)],
            &[],
            "e.3",
        ));
        assert!(names(&mirror).is_empty(), "no VIP, no answer");
        mirror.apply(event(
            true,
            vec![service("prod.d.global", "240.0.0.4", true)],
            &[],
            "f.1",
        ));
        assert_eq!(names(&mirror), ["prod.d.global"]);
    }
}
