//! Registry tests, by topic; the helpers here are shared by all of them.

use std::collections::BTreeMap;

use super::*;
use crate::fixtures::*;
use crate::model::{LocalityMode, ObjectKey, ObjectRef, PolicyInfo, TrafficPolicy, WorkloadKind};

mod clusterset;
mod dependencies;
mod hosts;
mod policies;
mod references;
mod rollouts;
mod status;
mod topology;
mod vips;

fn host(s: &str) -> Host {
    let mut parts = s.splitn(2, '.');
    let env = parts.next().unwrap();
    let identity = parts.next().unwrap().trim_end_matches(".global");
    Host::build(env, identity, "global").unwrap()
}

fn registry(deltas: impl IntoIterator<Item = Delta>) -> Registry {
    let mut r = Registry::new(RegistryConfig::default());
    for d in deltas {
        r.apply(d);
    }
    r
}

fn name(s: &str) -> ClusterName {
    ClusterName::new(s)
}

fn locality(region: &str, zone: &str) -> crate::model::Locality {
    crate::model::Locality {
        region: (!region.is_empty()).then(|| region.into()),
        zone: (!zone.is_empty()).then(|| zone.into()),
    }
}

fn remove(cluster: &str, object: ObjectRef) -> Delta {
    Delta::Remove(name(cluster), object)
}
