//! The wire-format answers of each name, computed when first asked for: encoded with
//! hickory's own encoder after the name's question, as the hickory path encodes them (the
//! question is emitted as received, and offered as a compression target whole, type and
//! class included, so no later name points into it: the bytes hold for any case of the
//! question).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;

use crate::Snapshot;
use crate::handler::MAX_UDP_PAYLOAD;
use crate::names::{Additional, NameKey, NameRecords, Owner};

/// The answer and additional sections of a positive answer of one type, as they follow the
/// question in the response.
#[derive(Clone, Debug)]
pub(crate) struct WireAnswer {
    /// The record type asked.
    pub(crate) qtype: u16,
    /// Records in the answer section.
    pub(crate) answers: u16,
    /// Records in the additional section (EDNS not included).
    pub(crate) additionals: u16,
    /// The sections' bytes.
    pub(crate) bytes: Box<[u8]>,
}

impl Snapshot {
    /// Forgets the wire answers of the SRV names whose additional section comes from a name
    /// in `changed` (the changed names' own are forgotten with their records).
    pub(crate) fn forget_dependent_answers(&mut self, changed: &HashSet<NameKey>) {
        // The SRV names pointing at a name belong to its owners. Each owner's parts are worked
        // out once, however many of its names changed: a headless service changes one name
        // per endpoint, and its parts are as many.
        let owners: HashSet<&Owner> = changed
            .iter()
            .filter_map(|name| self.names.get(name.as_bytes()))
            .flat_map(|records| &records.owners)
            .collect();
        let mut dependents = Vec::new();
        for owner in owners {
            for part in self.parts_of(owner) {
                if matches!(&part.additional, Additional::Target(t) if changed.contains(t)) {
                    dependents.push(part.name);
                }
            }
        }
        for name in dependents {
            if let Some(records) = self.names.get_mut(name.as_bytes()) {
                records.wire = OnceLock::new();
            }
        }
    }

    /// The wire answers of `name`: one per record type it has, none for a zone apex (whose
    /// answers come from the zone).
    pub(crate) fn wire_answers(&self, name: &[u8], records: &NameRecords) -> Arc<[WireAnswer]> {
        if self.zones.iter().any(|z| z.key.as_bytes() == name) {
            return Arc::default();
        }
        let mut wire = Vec::new();
        let mut rest = &records.records[..];
        while let Some(first) = rest.first() {
            let qtype = first.record_type();
            let len = rest.iter().take_while(|r| r.record_type() == qtype).count();
            let additionals = match qtype {
                RecordType::SRV => self.additionals(records),
                _ => &[],
            };
            if let Some(answer) = encode(name, qtype, &rest[..len], additionals) {
                wire.push(answer);
            }
            rest = &rest[len..];
        }
        wire.into()
    }
}

/// The sections after the question `name`/`qtype`/IN, encoded as the hickory path does.
fn encode(
    name: &[u8],
    qtype: RecordType,
    answers: &[Record],
    additionals: &[Record],
) -> Option<WireAnswer> {
    let mut bytes = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut bytes);
    // Nothing longer can ever be sent over UDP (the OPT record comes on top): a longer
    // answer is not kept, and its queries go to hickory, which truncates.
    encoder.set_max_size(MAX_UDP_PAYLOAD - super::query::OPT_LEN as u16);
    // The header's place, then the question as hickory-server's `Queries` emits it.
    encoder.emit_vec(&[0; 12]).ok()?;
    let start = encoder.offset();
    encoder.emit_vec(name).ok()?;
    encoder.emit_u16(u16::from(qtype)).ok()?;
    encoder.emit_u16(1).ok()?;
    encoder.store_label_pointer(start, encoder.offset());
    let body = encoder.offset();
    let answers = u16::try_from(encoder.emit_all(answers.iter()).ok()?).ok()?;
    let additionals = u16::try_from(encoder.emit_all(additionals.iter()).ok()?).ok()?;
    Some(WireAnswer {
        qtype: u16::from(qtype),
        answers,
        additionals,
        bytes: bytes.get(body..)?.into(),
    })
}
