//! Just enough of a UDP query to answer it from precomputed bytes, read without allocating:
//! anything unusual is declined.

use crate::names::MAX_WIRE_NAME;

/// The bytes of a DNS header.
pub(super) const HEADER_LEN: usize = 12;
/// Class IN.
const CLASS_IN: u16 = 1;
/// Type OPT (EDNS).
const TYPE_OPT: u16 = 41;
/// Bytes of a bare OPT record (root name, type, payload size, TTL, no options): the only
/// EDNS record the lean path reads and writes.
pub(super) const OPT_LEN: usize = 11;

/// A query the lean path can answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Query {
    /// Where its question (name, type, class) ends.
    pub(super) question_end: usize,
    pub(super) qtype: u16,
    /// The EDNS payload size asked, if it has an OPT record.
    pub(super) payload: Option<u16>,
}

impl Query {
    /// The question's name, lower-cased in wire format into `buf`.
    pub(super) fn lower_name<'b>(
        &self,
        message: &[u8],
        buf: &'b mut [u8; MAX_WIRE_NAME + 1],
    ) -> &'b [u8] {
        let name = &message[HEADER_LEN..self.question_end - 4];
        let buf = &mut buf[..name.len()];
        for (to, from) in buf.iter_mut().zip(name) {
            *to = from.to_ascii_lowercase();
        }
        // Length bytes are at most 63: lower-casing leaves them alone.
        buf
    }
}

fn u16_at(message: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(at)?,
        *message.get(at + 1)?,
    ]))
}

/// `message` read as a query the lean path answers: a query (QR 0) with opcode QUERY,
/// exactly one question of class IN whose name has no compression pointer, no answer or
/// authority records, and nothing or one bare OPT record (root name, version 0, no extended
/// rcode, no options) as additionals, with no byte after it. `None` for anything else.
pub(super) fn parse(message: &[u8]) -> Option<Query> {
    let header = message.get(..HEADER_LEN)?;
    // QR 0 and opcode QUERY (0); the other bits of this byte are echoed (RD) or ignored.
    if header[2] & 0xF8 != 0 {
        return None;
    }
    let counts = [
        u16_at(header, 4)?,
        u16_at(header, 6)?,
        u16_at(header, 8)?,
        u16_at(header, 10)?,
    ];
    let with_opt = match counts {
        [1, 0, 0, 0] => false,
        [1, 0, 0, 1] => true,
        _ => return None,
    };
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*message.get(at)?);
        if len > 63 {
            // A pointer, or a label type nobody uses.
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    if at - HEADER_LEN > MAX_WIRE_NAME {
        return None;
    }
    let qtype = u16_at(message, at)?;
    if u16_at(message, at + 2)? != CLASS_IN {
        return None;
    }
    let question_end = at + 4;
    let payload = if with_opt {
        // Root name, OPT, payload, extended rcode, version, flags, no rdata.
        let opt = message.get(question_end..)?;
        if opt.len() != OPT_LEN || opt[0] != 0 || u16_at(opt, 1)? != TYPE_OPT {
            return None;
        }
        if opt[5] != 0 || opt[6] != 0 || u16_at(opt, 9)? != 0 {
            return None;
        }
        Some(u16_at(opt, 3)?)
    } else {
        if message.len() != question_end {
            return None;
        }
        None
    };
    Some(Query {
        question_end,
        qtype,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
        \x04Prod\x01a\x06global\x00\x00\x01\x00\x01";

    #[test]
    fn a_plain_query_is_read_and_its_name_lower_cased() {
        let query = parse(QUERY).unwrap();
        assert_eq!((query.qtype, query.payload), (1, None));
        let mut buf = [0u8; MAX_WIRE_NAME + 1];
        assert_eq!(
            query.lower_name(QUERY, &mut buf),
            b"\x04prod\x01a\x06global\x00"
        );
    }

    #[test]
    fn a_bare_opt_record_is_read_and_anything_more_declined() {
        let mut edns = QUERY.to_vec();
        edns[11] = 1;
        edns.extend_from_slice(b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00");
        assert_eq!(parse(&edns).unwrap().payload, Some(4096));
        let mut version1 = edns.clone();
        version1[QUERY.len() + 6] = 1;
        let mut option = edns.clone();
        option[QUERY.len() + 10] = 4;
        option.extend_from_slice(b"\x00\x0a\x00\x00");
        let mut trailing = QUERY.to_vec();
        trailing.push(0);
        let mut pointer = QUERY.to_vec();
        pointer[12] = 0xC0;
        let mut chaos = QUERY.to_vec();
        chaos[QUERY.len() - 1] = 3;
        let mut notify = QUERY.to_vec();
        notify[2] = 4 << 3;
        for declined in [version1, option, trailing, pointer, chaos, notify] {
            assert_eq!(parse(&declined), None, "{declined:?}");
        }
    }
}
