//! The replicas that share clusters, as the shared store (etcd) lists them.
//!
//! Each replica registers a record under its lease: its name and the settings every replica
//! must share, because they decide what every replica renders (the host suffix, the VIP
//! range, the labels that name an identity). The live replicas are exactly the records the
//! store holds. A replica whose shared settings differ from a live replica's refuses to join
//! and names each setting that differs; a record that cannot be read is reported and left
//! out, the others still count.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One replica's membership record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The replica's name (its pod's).
    pub replica: String,
    /// The settings every replica must share: each by the flag that sets it, with its value
    /// as this replica runs with it.
    pub settings: BTreeMap<String, String>,
}

impl MemberRecord {
    /// The record as the store holds it.
    pub fn encode(&self) -> Vec<u8> {
        // A map of strings always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A record in the members' prefix that is not a replica's record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("membership record {key} is ignored: {reason}")]
pub struct CorruptRecord {
    /// The store key.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The record stored under `key` (whose last segment is the replica's name).
pub fn decode(key: &str, value: &[u8]) -> Result<MemberRecord, CorruptRecord> {
    let corrupt = |reason: String| CorruptRecord {
        key: key.to_owned(),
        reason,
    };
    let record: MemberRecord =
        serde_json::from_slice(value).map_err(|e| corrupt(format!("not a member record: {e}")))?;
    let named = key.rsplit('/').next().unwrap_or(key);
    if record.replica != named {
        return Err(corrupt(format!(
            "it names replica {:?} under the key of {named:?}",
            record.replica
        )));
    }
    Ok(record)
}

/// The live replicas, from the records under the members' prefix (key, value), and the
/// records left out.
pub fn live(entries: &[(String, Vec<u8>)]) -> (Vec<MemberRecord>, Vec<CorruptRecord>) {
    let mut members = Vec::new();
    let mut corrupt = Vec::new();
    for (key, value) in entries {
        match decode(key, value) {
            Ok(record) => members.push(record),
            Err(err) => corrupt.push(err),
        }
    }
    members.sort_by(|a, b| a.replica.cmp(&b.replica));
    (members, corrupt)
}

/// A shared setting on which this replica and a live one disagree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "setting {setting} differs: this replica has {}, replica {replica} has {}",
    shown(ours),
    shown(theirs)
)]
pub struct SettingMismatch {
    /// The flag that sets it.
    pub setting: String,
    /// The live replica.
    pub replica: String,
    /// This replica's value (`None`: it does not know the setting).
    pub ours: Option<String>,
    /// The live replica's value.
    pub theirs: Option<String>,
}

fn shown(value: &Option<String>) -> String {
    value
        .as_ref()
        .map_or_else(|| "no such setting".to_owned(), |v| format!("{v:?}"))
}

/// The settings on which `ours` differs from the live replicas other than `me`: empty when
/// this replica may join.
pub fn mismatches(
    me: &str,
    ours: &BTreeMap<String, String>,
    members: &[MemberRecord],
) -> Vec<SettingMismatch> {
    let mut out = Vec::new();
    for member in members.iter().filter(|m| m.replica != me) {
        let names: BTreeSet<&String> = ours.keys().chain(member.settings.keys()).collect();
        for name in names {
            let (mine, theirs) = (ours.get(name), member.settings.get(name));
            if mine != theirs {
                out.push(SettingMismatch {
                    setting: name.clone(),
                    replica: member.replica.clone(),
                    ours: mine.cloned(),
                    theirs: theirs.cloned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(replica: &str, settings: &[(&str, &str)]) -> MemberRecord {
        MemberRecord {
            replica: replica.to_owned(),
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn records_round_trip_and_a_corrupt_one_is_left_out_with_its_key() {
        let a = record("federator-0", &[("host-suffix", "global")]);
        let entries = vec![
            ("/f/members/federator-0".to_owned(), a.encode()),
            ("/f/members/federator-1".to_owned(), b"{not json".to_vec()),
            (
                "/f/members/federator-2".to_owned(),
                record("federator-9", &[]).encode(),
            ),
        ];
        let (members, corrupt) = live(&entries);
        assert_eq!(members, [a]);
        let keys: Vec<&str> = corrupt.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["/f/members/federator-1", "/f/members/federator-2"]);
        assert!(
            corrupt[1]
                .to_string()
                .contains("names replica \"federator-9\""),
            "{}",
            corrupt[1]
        );
    }

    #[test]
    fn a_replica_with_other_settings_is_told_each_one_that_differs() {
        let ours = record(
            "federator-2",
            &[("host-suffix", "global"), ("vip-range", "240.0.0.0/16")],
        );
        let members = vec![
            record(
                "federator-0",
                &[("host-suffix", "mesh"), ("vip-range", "240.0.0.0/16")],
            ),
            record("federator-1", &[("host-suffix", "global")]),
            // Its own record, as listed after it registered: never a mismatch.
            ours.clone(),
        ];
        let found = mismatches("federator-2", &ours.settings, &members);
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "setting host-suffix differs: this replica has \"global\", replica federator-0 has \"mesh\"",
                "setting vip-range differs: this replica has \"240.0.0.0/16\", replica federator-1 has no such setting",
            ]
        );
        let alike = [record(
            "federator-0",
            &[("host-suffix", "global"), ("vip-range", "240.0.0.0/16")],
        )];
        assert!(mismatches("federator-2", &ours.settings, &alike).is_empty());
    }
}
