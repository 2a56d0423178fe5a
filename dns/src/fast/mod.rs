//! The lean UDP path: answers the common query (one question, class IN, a name and type the
//! snapshot has records of, at most a bare EDNS OPT record) from wire-format answers
//! precomputed with the snapshot, patching in the query's id, flags, question and EDNS. It
//! decodes nothing into hickory types and allocates nothing; whatever it does not recognise
//! it declines, and the message takes the hickory path (which also serves TCP), byte for
//! byte the same answers either way (checked by `src/fast/tests.rs`).

mod precompute;
mod query;

pub(crate) use precompute::WireAnswer;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::Snapshot;
use crate::handler::{MAX_UDP_PAYLOAD, PLAIN_UDP_PAYLOAD};
use crate::names::MAX_WIRE_NAME;

/// The answer to `message` from `snapshot` written to `out`, with its record type and
/// response code for the metrics; `None` (and `out` in any state) when the hickory path
/// must answer it.
pub(crate) fn respond(
    snapshot: &Snapshot,
    message: &[u8],
    out: &mut Vec<u8>,
) -> Option<(RecordType, ResponseCode)> {
    let query = query::parse(message)?;
    if !snapshot.is_ready() {
        return None;
    }
    let mut key = [0u8; MAX_WIRE_NAME + 1];
    let key = query.lower_name(message, &mut key);
    let records = snapshot.names.get(key)?;
    let wire = records
        .wire
        .get_or_init(|| snapshot.wire_answers(key, records))
        .iter()
        .find(|w| w.qtype == query.qtype)?;
    let question = &message[query::HEADER_LEN..query.question_end];
    let opt_len = if query.payload.is_some() {
        query::OPT_LEN
    } else {
        0
    };
    let len = query::HEADER_LEN + question.len() + wire.bytes.len() + opt_len;
    let limit = usize::from(query.payload.map_or(PLAIN_UDP_PAYLOAD, |p| {
        p.clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
    }));
    if len > limit {
        // Truncation: hickory's business.
        return None;
    }
    out.clear();
    out.extend_from_slice(&message[..2]);
    // QR, opcode QUERY, AA, RD as asked; CD as asked, NOERROR.
    out.push(0x84 | (message[2] & 0x01));
    out.push(message[3] & 0x10);
    let additionals = wire.additionals + u16::from(query.payload.is_some());
    for count in [1, wire.answers, 0, additionals] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out.extend_from_slice(question);
    out.extend_from_slice(&wire.bytes);
    if let Some(payload) = query.payload {
        let payload = payload.clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD);
        // Root name, type OPT, the payload as class, TTL 0 (no extended rcode, version 0,
        // no flags), no options.
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0; 6]);
    }
    Some((RecordType::from(query.qtype), ResponseCode::NoError))
}

#[cfg(test)]
mod tests;
