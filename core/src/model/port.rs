use std::fmt;

use smol_str::SmolStr;

/// The application protocol Istio should assume on a port, as ServiceEntry `ports[].protocol`
/// spells it.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Protocol {
    /// Plain HTTP/1.1.
    Http,
    /// HTTP/2 (also h2c).
    Http2,
    /// HTTP over TLS terminated by the application.
    Https,
    /// gRPC.
    Grpc,
    /// TLS terminated by the application (SNI routing only).
    Tls,
    /// MongoDB wire protocol.
    Mongo,
    /// MySQL wire protocol.
    Mysql,
    /// Redis wire protocol.
    Redis,
    /// Opaque TCP.
    Tcp,
}

impl Protocol {
    /// Istio's name for the protocol.
    pub fn as_istio(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Http2 => "HTTP2",
            Self::Https => "HTTPS",
            Self::Grpc => "GRPC",
            Self::Tls => "TLS",
            Self::Mongo => "MONGO",
            Self::Mysql => "MYSQL",
            Self::Redis => "REDIS",
            Self::Tcp => "TCP",
        }
    }

    /// Detects the protocol the way Istio does for a Kubernetes Service port: `appProtocol`
    /// first, then the port name's prefix (`http-web`, `grpc`), else TCP.
    pub fn detect(name: Option<&str>, app_protocol: Option<&str>) -> Self {
        app_protocol
            .and_then(Self::from_app_protocol)
            .or_else(|| name.and_then(Self::from_port_name))
            .unwrap_or(Self::Tcp)
    }

    fn from_app_protocol(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "kubernetes.io/h2c" => Some(Self::Http2),
            "kubernetes.io/ws" => Some(Self::Http),
            "kubernetes.io/wss" => Some(Self::Https),
            other => Self::from_prefix(other),
        }
    }

    fn from_port_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        // `grpc-web` is HTTP to the proxy; check it before splitting on '-'.
        if lower == "grpc-web" || lower.starts_with("grpc-web-") {
            return Some(Self::Http);
        }
        let prefix = lower.split('-').next().unwrap_or_default();
        Self::from_prefix(prefix)
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        Some(match prefix {
            "http" => Self::Http,
            "http2" | "h2c" => Self::Http2,
            "https" => Self::Https,
            "grpc" => Self::Grpc,
            "tls" => Self::Tls,
            "mongo" => Self::Mongo,
            "mysql" => Self::Mysql,
            "redis" => Self::Redis,
            "tcp" => Self::Tcp,
            _ => return None,
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_istio())
    }
}

/// One port a global host offers: the Service port number (identical in every cluster), its
/// name and protocol.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct MeshPort {
    /// The Service port number clients connect to.
    pub number: u16,
    /// The port name; Istio keys endpoint ports by it.
    pub name: SmolStr,
    /// What Istio should assume runs on it.
    pub protocol: Protocol,
}

impl MeshPort {
    /// Builds a port.
    pub fn new(name: impl AsRef<str>, number: u16, protocol: Protocol) -> Self {
        Self {
            number,
            name: SmolStr::new(name),
            protocol,
        }
    }
}

impl fmt::Display for MeshPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}({})", self.number, self.protocol, self.name)
    }
}

/// Target ports are written as the map they are (sorted by port name).
impl serde::Serialize for TargetPorts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Read as a map, so the pairs are sorted and unique, as lookups need.
impl<'de> serde::Deserialize<'de> for TargetPorts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        std::collections::BTreeMap::<String, u16>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_protocol_wins_over_name() {
        assert_eq!(
            Protocol::detect(Some("http-web"), Some("grpc")),
            Protocol::Grpc
        );
        assert_eq!(
            Protocol::detect(Some("web"), Some("kubernetes.io/h2c")),
            Protocol::Http2
        );
        assert_eq!(Protocol::detect(None, Some("HTTPS")), Protocol::Https);
    }

    #[test]
    fn name_prefix_selects_protocol() {
        for (name, want) in [
            ("http", Protocol::Http),
            ("http-web", Protocol::Http),
            ("HTTP2-api", Protocol::Http2),
            ("grpc", Protocol::Grpc),
            ("grpc-web", Protocol::Http),
            ("tls-db", Protocol::Tls),
            ("mongo", Protocol::Mongo),
            ("redis-cache", Protocol::Redis),
            ("tcp-raw", Protocol::Tcp),
        ] {
            assert_eq!(Protocol::detect(Some(name), None), want, "{name}");
        }
    }

    #[test]
    fn unknown_or_missing_is_tcp() {
        assert_eq!(Protocol::detect(Some("web"), None), Protocol::Tcp);
        assert_eq!(
            Protocol::detect(Some("metrics"), Some("prometheus")),
            Protocol::Tcp
        );
        assert_eq!(Protocol::detect(None, None), Protocol::Tcp);
    }
}

/// The port an EndpointSlice's endpoints listen on (the Service's target port), by Service
/// port name (`""` for a Service's single unnamed port): sorted pairs in one shared
/// allocation, held by the slice and by every backend endpoint built from it. A `BTreeMap`
/// would take a node of eleven slots for the two or three ports a slice has.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetPorts(std::sync::Arc<[(SmolStr, u16)]>);

impl TargetPorts {
    /// The port named `name`.
    pub fn get(&self, name: &str) -> Option<u16> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|at| self.0[at].1)
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u16)> {
        self.0.iter().map(|(name, port)| (name.as_str(), *port))
    }

    /// Whether both are one copy.
    #[cfg(test)]
    pub(crate) fn shares_with(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }

    /// The same ports, as the one copy `interner` holds.
    pub(crate) fn shared_in(
        self,
        interner: &mut crate::registry::Interner<[(SmolStr, u16)]>,
    ) -> Self {
        Self(interner.share(self.0))
    }
}

impl From<std::collections::BTreeMap<String, u16>> for TargetPorts {
    fn from(map: std::collections::BTreeMap<String, u16>) -> Self {
        // A BTreeMap iterates sorted and without duplicates.
        Self(
            map.into_iter()
                .map(|(name, port)| (SmolStr::from(name), port))
                .collect(),
        )
    }
}

#[cfg(test)]
mod target_ports_tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn finds_each_port_by_name_and_nothing_else() {
        let map = BTreeMap::from([
            ("http".to_owned(), 8080),
            (String::new(), 80),
            ("grpc".to_owned(), 9090),
        ]);
        let ports = TargetPorts::from(map.clone());
        for (name, port) in &map {
            assert_eq!(ports.get(name), Some(*port), "{name}");
        }
        assert_eq!(ports.get("metrics"), None);
        assert_eq!(
            ports.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["", "grpc", "http"]
        );
    }
}
