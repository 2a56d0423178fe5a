//! Names as a snapshot keys them, and what each name holds: its records, who put them there,
//! and how many names exist below it.

use std::borrow::Borrow;
use std::sync::{Arc, OnceLock};

use hickory_proto::rr::{LowerName, Name, Record, RecordType};

use crate::fast::WireAnswer;

/// Longest name in wire format (RFC 1035 3.1).
pub(crate) const MAX_WIRE_NAME: usize = 255;

/// A domain name in lower-case wire format (length-prefixed labels, then the root's empty
/// label): the key of every name of a snapshot, so that the query path looks a name up from
/// bytes without building a hickory `Name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NameKey(Arc<[u8]>);

impl Borrow<[u8]> for NameKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl NameKey {
    /// The key of `name`, lower-cased.
    pub(crate) fn of(name: &Name) -> Self {
        let mut buf = [0u8; MAX_WIRE_NAME + 1];
        // A `Name` is at most 255 bytes in wire format, so it fits.
        Self(Arc::from(write_key(name.iter(), &mut buf).unwrap_or(&[0])))
    }

    /// The key of wire-format bytes that are one already.
    pub(crate) fn from_bytes(key: &[u8]) -> Self {
        Self(Arc::from(key))
    }

    /// The key as bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// `name`'s key written into `buf`, without allocating; `None` if it does not fit.
pub(crate) fn lower_key<'b>(
    name: &LowerName,
    buf: &'b mut [u8; MAX_WIRE_NAME + 1],
) -> Option<&'b [u8]> {
    write_key(name.iter(), buf)
}

fn write_key<'a, 'b>(
    labels: impl Iterator<Item = &'a [u8]>,
    buf: &'b mut [u8; MAX_WIRE_NAME + 1],
) -> Option<&'b [u8]> {
    let mut at = 0;
    for label in labels {
        let len = u8::try_from(label.len()).ok()?;
        let end = at + 1 + label.len();
        if end >= buf.len() {
            return None;
        }
        buf[at] = len;
        for (to, from) in buf[at + 1..end].iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        at = end;
    }
    buf[at] = 0;
    Some(&buf[..=at])
}

/// The key of the name one label up; `None` for the root.
pub(crate) fn parent(key: &[u8]) -> Option<&[u8]> {
    let len = usize::from(*key.first()?);
    if len == 0 {
        return None;
    }
    key.get(1 + len..)
}

/// What kind of source put records at a name; sources of a kind are ordered after those of
/// the kinds before (the order of a full build).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// A [`HostRecord`](crate::HostRecord).
    Host,
    /// `dns-version.clusterset.local.`
    DnsVersion,
    /// A [`ClustersetRecord`](crate::ClustersetRecord).
    Service,
}

/// A source (host, service) as it owns records at a name. Ordered by precedence: kind, then
/// when it first came (a full build's input order, then the order of updates), which
/// decides the order of merged records and which of two services of one name is answered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Owner {
    pub(crate) kind: Kind,
    pub(crate) seq: u64,
    /// The source's name as given (its identity: `A.global` and `a.global` are two hosts).
    pub(crate) name: Arc<str>,
}

/// What one source puts at one name.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub(crate) name: NameKey,
    pub(crate) records: Vec<Record>,
    pub(crate) additional: Additional,
}

/// Merges the parts of one source that have the same name, in order: records appended, the
/// last additional section that is not [`Additional::None`] kept.
pub(crate) fn merge_parts(mut parts: Vec<Part>) -> Vec<Part> {
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut merged: Vec<Part> = Vec::with_capacity(parts.len());
    for part in parts {
        match merged.last_mut() {
            Some(last) if last.name == part.name => {
                last.records.extend(part.records);
                if !matches!(part.additional, Additional::None) {
                    last.additional = part.additional;
                }
            }
            _ => merged.push(part),
        }
    }
    merged
}

/// Records of one name: a host's address, or an SRV name's records and what goes in the
/// additional section with them; who put them there; and how many names exist directly
/// below it (a name without records but with names below is an empty non-terminal, which
/// exists: RFC 8020).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameRecords {
    /// Grouped by type (see [`NameRecords::of_type`]).
    pub(crate) records: Vec<Record>,
    pub(crate) additional: Additional,
    /// The sources of `records`, by precedence.
    pub(crate) owners: Vec<Owner>,
    /// Services of this name (answered or left out), by precedence: the first is answered
    /// unless a source before it has records here.
    pub(crate) claims: Vec<Owner>,
    /// Names directly below that exist.
    pub(crate) children: u32,
    /// The positive answers of each type in wire format, for the lean UDP path: computed
    /// when first asked for (a full build does not pay for names nobody asks), forgotten
    /// when the records, or those of an SRV target, change.
    pub(crate) wire: OnceLock<Arc<[WireAnswer]>>,
}

/// The additional section of an SRV answer: the addresses of its targets.
#[derive(Clone, Debug, Default)]
pub(crate) enum Additional {
    /// Nothing.
    #[default]
    None,
    /// One target, whose records are those of this other name (stored once, with it).
    Target(NameKey),
    /// Several targets (a headless service's endpoints): their addresses, one copy shared by
    /// every SRV name of the service.
    Records(Arc<[Record]>),
}

impl NameRecords {
    /// The records of one type (records of a name are few, a scan is the cheapest index).
    pub(crate) fn of_type(&self, qtype: RecordType) -> &[Record] {
        let Some(start) = self.records.iter().position(|r| r.record_type() == qtype) else {
            return &[];
        };
        let len = self.records[start..]
            .iter()
            .take_while(|r| r.record_type() == qtype)
            .count();
        &self.records[start..start + len]
    }

    /// Whether nothing keeps the name: no records' source, no service claiming it, no name
    /// below.
    pub(crate) fn is_unused(&self) -> bool {
        self.owners.is_empty() && self.claims.is_empty() && self.children == 0
    }

    /// Sets the records from the parts of every owner, in precedence order, as a full build
    /// adds them: appended, grouped by type (stable), the last additional section kept.
    pub(crate) fn merge<'a>(&mut self, parts: impl Iterator<Item = &'a Part>) {
        self.wire = OnceLock::new();
        self.records.clear();
        self.additional = Additional::None;
        for part in parts {
            self.records.extend(part.records.iter().cloned());
            if !matches!(part.additional, Additional::None) {
                self.additional = part.additional.clone();
            }
        }
        // Stable: records of one type keep their order.
        self.records.sort_by_key(Record::record_type);
        self.records.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn keys_are_lower_case_wire_names_and_walk_up() {
        let key = NameKey::of(&Name::from_str("Prod.A.global.").unwrap());
        assert_eq!(key.as_bytes(), b"\x04prod\x01a\x06global\x00");
        let up = parent(key.as_bytes()).unwrap();
        assert_eq!(up, b"\x01a\x06global\x00");
        assert_eq!(parent(parent(up).unwrap()), Some(&b"\x00"[..]));
        assert_eq!(parent(b"\x00"), None);
        let lower = LowerName::from(Name::from_str("PROD.a.Global").unwrap());
        let mut buf = [0u8; MAX_WIRE_NAME + 1];
        assert_eq!(lower_key(&lower, &mut buf), Some(key.as_bytes()));
    }
}
