//! The registry as a standalone DNS server knows it: what `Watch` sent, folded into the
//! records DNS answers. Pure: the follow loop feeds events, and publishes only whole batches
//! (an event with a version), so DNS never answers from half a snapshot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use federator_dns::HostRecord;

use crate::api::pb;

/// What the upstream last sent, as DNS records.
#[derive(Debug, Default)]
pub struct UpstreamMirror {
    records: BTreeMap<String, HostRecord>,
    /// The version of the last whole batch applied: sent back on reconnect.
    version: String,
}

impl UpstreamMirror {
    /// Applies one event; true when it completed a batch (the records are whole: publish).
    pub fn apply(&mut self, event: pb::WatchEvent) -> bool {
        if event.reset {
            self.records.clear();
            self.version.clear();
        }
        for service in event.upserted {
            match record(&service) {
                Some(record) => {
                    self.records.insert(service.host, record);
                }
                None => {
                    self.records.remove(&service.host);
                }
            }
        }
        for host in event.removed {
            self.records.remove(&host);
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
