use std::fmt;
use std::sync::Arc;

use smol_str::SmolStr;

/// The name a dependent cluster is registered under (a data key of its kubeconfig Secret).
///
/// Cheap to clone: the registry keeps it in many indexes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterName(Arc<str>);

impl ClusterName {
    /// Wraps a cluster name as given by the user.
    pub fn new(name: impl AsRef<str>) -> Self {
        Self(Arc::from(name.as_ref()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for ClusterName {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// A global host name such as `prod.greeting.global`: the key of the registry.
///
/// Always lower-case and a valid DNS name; only [`Host::build`] creates one.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host(Arc<str>);

/// Longest host we accept: a DNS name's limit, and Kubernetes' limit for object names
/// (the Istio objects for a host are named after it).
const MAX_HOST_LEN: usize = 253;

impl Host {
    /// Builds `<env>.<identity>.<suffix>`, lower-cased, checking that the result is a valid DNS
    /// name short enough to name Kubernetes objects after.
    pub fn build(env: &str, identity: &str, suffix: &str) -> Result<Self, InvalidName> {
        let env = env.to_ascii_lowercase();
        let identity = identity.to_ascii_lowercase();
        validate_dns_label(&env).map_err(|reason| InvalidName::new("env", &env, reason))?;
        validate_identity(&identity)
            .map_err(|reason| InvalidName::new("identity", &identity, reason))?;
        let suffix = suffix.trim_matches('.').to_ascii_lowercase();
        for label in suffix.split('.') {
            validate_dns_label(label)
                .map_err(|reason| InvalidName::new("host suffix", &suffix, reason))?;
        }
        Self::checked(format!("{env}.{identity}.{suffix}"))
    }

    /// A host from labels already checked, if it is short enough to name objects after.
    pub(super) fn checked(host: String) -> Result<Self, InvalidName> {
        if host.len() > MAX_HOST_LEN {
            return Err(InvalidName::new(
                "host",
                &host,
                format!("longer than {MAX_HOST_LEN} characters"),
            ));
        }
        Ok(Self(Arc::from(host)))
    }

    /// This host with one more label in front (`preview.` + `prod.greeting.global`), checked
    /// like any host.
    pub fn with_prefix(&self, label: &str) -> Result<Self, InvalidName> {
        validate_dns_label(label)
            .map_err(|reason| InvalidName::new("host prefix", label, reason))?;
        Self::checked(format!("{label}.{}", self.0))
    }

    /// The host `name` spells under `suffix` (`<env>.<identity>.<suffix>`, as [`Host::build`]
    /// writes it: lower-case, no trailing dot), or the clusterset host it spells
    /// (`<svc>.<ns>.svc.clusterset.local`, as [`Host::clusterset`] writes it), or `None` when
    /// it is neither.
    pub fn parse(name: &str, suffix: &str) -> Option<Self> {
        if let Some(rest) = name
            .strip_suffix(super::CLUSTERSET_DOMAIN)
            .and_then(|r| r.strip_suffix('.'))
        {
            let (service, namespace) = rest.split_once('.')?;
            return Self::clusterset(service, namespace)
                .ok()
                .filter(|h| h.as_str() == name);
        }
        let suffix = suffix.trim_matches('.').to_ascii_lowercase();
        let rest = name.strip_suffix(suffix.as_str())?.strip_suffix('.')?;
        let (env, identity) = rest.split_once('.')?;
        Self::build(env, identity, &suffix)
            .ok()
            .filter(|h| h.as_str() == name)
    }

    /// The host as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A value that cannot be used as part of a DNS name or label, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidName {
    /// Which value was wrong (`identity`, `env`, ...).
    pub what: &'static str,
    /// The offending value.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

impl InvalidName {
    pub(super) fn new(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            what,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Checks an RFC 1123 label: 1-63 characters of `[a-z0-9-]`, not starting or ending with `-`.
///
/// Identities and envs become labels of the global host name and Kubernetes label values, so
/// they must pass this.
pub fn validate_dns_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("must not be empty".into());
    }
    if label.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "character {c:?} is not allowed (only a-z, 0-9 and '-')"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Checks an identity: one or more DNS labels joined by dots (Admiral's asset aliases may
/// contain dots), at most 63 characters so it also fits a Kubernetes label value.
pub fn validate_identity(identity: &str) -> Result<(), String> {
    if identity.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    identity.split('.').try_for_each(validate_dns_label)
}

/// Checks a Kubernetes label value that must not be empty: at most 63 characters of
/// `[A-Za-z0-9._-]`, starting and ending with a letter or digit.
///
/// Networks, regions and zones given in annotations end up in label values and in Istio
/// localities (`region/zone`), so they must pass this; it never panics, whatever the input.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "character {c:?} is not allowed (only letters, digits, '-', '_' and '.')"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(value.chars().next()) || !edge_ok(value.chars().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Namespace and name of a namespaced Kubernetes object.
#[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The object's namespace.
    pub namespace: SmolStr,
    /// The object's name.
    pub name: SmolStr,
}

impl ObjectKey {
    /// A key sharing the names it is built from (a copy of a name over 23 bytes would take
    /// a heap block of its own).
    pub fn from_parts(namespace: &SmolStr, name: &SmolStr) -> Self {
        Self {
            namespace: namespace.clone(),
            name: name.clone(),
        }
    }

    /// Builds a key from namespace and name.
    pub fn new(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        Self {
            namespace: SmolStr::new(namespace),
            name: SmolStr::new(name),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A cluster name is written as its string.
impl serde::Serialize for ClusterName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ClusterName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_lower_case_env_identity_suffix() {
        let host = Host::build("Prod", "Greeting", "global").unwrap();
        assert_eq!(host.as_str(), "prod.greeting.global");
        let host = Host::build("prod", "greeting", "mesh.example.").unwrap();
        assert_eq!(host.as_str(), "prod.greeting.mesh.example");
    }

    #[test]
    fn host_rejects_values_that_are_not_dns_labels() {
        assert_eq!(
            Host::build("prod", "payments.ledger", "global")
                .unwrap()
                .as_str(),
            "prod.payments.ledger.global"
        );
        assert!(Host::build("prod", "payments..ledger", "global").is_err());
        let err = Host::build("prod", "greeting_svc", "global").unwrap_err();
        assert_eq!(err.what, "identity");
        assert!(err.reason.contains("'_'"), "{err}");
        assert_eq!(Host::build("", "a", "global").unwrap_err().what, "env");
        assert_eq!(Host::build("-x", "a", "global").unwrap_err().what, "env");
        let long = "a".repeat(64);
        assert!(Host::build("prod", &long, "global").is_err());
        assert_eq!(
            Host::build("prod", "a", "bad..suffix").unwrap_err().what,
            "host suffix"
        );
    }

    #[test]
    fn host_length_is_bounded() {
        let label = "a".repeat(63);
        let suffix = format!("{label}.{label}.{label}");
        let err = Host::build(&label, &label, &suffix).unwrap_err();
        assert_eq!(err.what, "host");
    }

    #[test]
    fn hosts_parse_back_from_their_names() {
        assert_eq!(
            Host::parse("prod.greeting.global", "global")
                .unwrap()
                .as_str(),
            "prod.greeting.global"
        );
        assert_eq!(
            Host::parse("prod.payments.ledger.global", "global")
                .unwrap()
                .as_str(),
            "prod.payments.ledger.global"
        );
        assert!(Host::parse("greeting.global", "global").is_none());
        assert!(Host::parse("prod.greeting.mesh", "global").is_none());
        assert!(
            Host::parse("Prod.greeting.global", "global").is_none(),
            "not as built"
        );
    }
}
