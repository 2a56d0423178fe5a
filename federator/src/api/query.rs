//! What a request asks for, checked: a host name to look up, or the filters of a listing.
//! Pure; a wrong value is an error naming its field.

use crate::model::{ClusterName, Host, validate_dns_label, validate_identity};
use crate::registry::GlobalService;

/// A request field whose value cannot be valid, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub(super) struct BadField {
    /// The field, as named in the proto.
    pub(super) field: &'static str,
    /// Why its value is wrong.
    pub(super) reason: String,
}

/// Longest host name (a DNS name's limit).
const MAX_HOST_LEN: usize = 253;

/// Longest value echoed back in an error: a request cannot make its answer large.
const SHOWN: usize = 80;

/// `value` quoted for an error message, cut at [`SHOWN`] characters.
pub(crate) fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN {
        format!("{value:?}")
    } else {
        let cut: String = value.chars().take(SHOWN).collect();
        format!("{cut:?}... ({} bytes)", value.len())
    }
}

/// Services per `ListServices` page when the client does not say.
const DEFAULT_PAGE: usize = 500;
/// Most services per page: a page of typical services stays far below 4 MiB.
const MAX_PAGE: usize = 5000;

/// A page of `ListServices`: how many, after which host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Page {
    /// Services in the page.
    pub(super) size: usize,
    /// The last host of the previous page.
    pub(super) after: Option<Host>,
}

/// Reads `page_size` and `page_token` (the last host of the previous page).
pub(super) fn page(size: u32, token: &str, suffix: &str) -> Result<Page, BadField> {
    let size = match usize::try_from(size) {
        Ok(0) => DEFAULT_PAGE,
        Ok(n) if n <= MAX_PAGE => n,
        _ => {
            return Err(BadField {
                field: "page_size",
                reason: format!("{size} is more than {MAX_PAGE}"),
            });
        }
    };
    if token.is_empty() {
        return Ok(Page { size, after: None });
    }
    let bad = || BadField {
        field: "page_token",
        reason: format!("{} is not a token this API gave out", shown(token)),
    };
    let after = host(token, suffix).map_err(|_| bad())?.ok_or_else(bad)?;
    Ok(Page {
        size,
        after: Some(after),
    })
}

/// The global host a `GetService` names, or `None` when it cannot be one (not under
/// `suffix`): such a host does not exist, which is not a malformed request.
pub(super) fn host(name: &str, suffix: &str) -> Result<Option<Host>, BadField> {
    let bad = |reason: String| BadField {
        field: "host",
        reason,
    };
    if name.len() > MAX_HOST_LEN + 1 {
        return Err(bad(format!("longer than {MAX_HOST_LEN} characters")));
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    for label in name.split('.') {
        validate_dns_label(label).map_err(|why| bad(format!("label {label:?} {why}")))?;
    }
    Ok(Host::parse(&name, suffix))
}

/// The cluster a `ClusterStatus` asks for; `None` (every cluster) when empty.
pub(super) fn cluster(name: &str) -> Result<Option<ClusterName>, BadField> {
    if name.is_empty() {
        return Ok(None);
    }
    validate_dns_label(name).map_err(|why| BadField {
        field: "cluster",
        reason: format!("{} {why}", shown(name)),
    })?;
    Ok(Some(ClusterName::new(name)))
}

/// The filters of a `ListServices`, checked; an empty field matches everything.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Filter {
    cluster: Option<String>,
    identity: Option<String>,
    env: Option<String>,
    namespace: Option<String>,
}

impl Filter {
    /// Checks each field set: clusters, envs and namespaces are DNS labels, identities one
    /// or more labels joined by dots (compared lower-case, as hosts are).
    pub(super) fn parse(
        cluster: &str,
        identity: &str,
        env: &str,
        namespace: &str,
    ) -> Result<Self, BadField> {
        fn field(
            name: &'static str,
            value: &str,
            check: fn(&str) -> Result<(), String>,
        ) -> Result<Option<String>, BadField> {
            if value.is_empty() {
                return Ok(None);
            }
            check(value).map_err(|reason| BadField {
                field: name,
                reason: format!("{} {reason}", shown(value)),
            })?;
            Ok(Some(value.to_owned()))
        }
        Ok(Self {
            cluster: self::cluster(cluster)?.map(|c| c.as_str().to_owned()),
            identity: field(
                "identity",
                &identity.to_ascii_lowercase(),
                validate_identity,
            )?,
            env: field("env", &env.to_ascii_lowercase(), validate_dns_label)?,
            namespace: field("namespace", namespace, validate_dns_label)?,
        })
    }

    /// Whether `service` matches every field set.
    pub(super) fn matches(&self, service: &GlobalService) -> bool {
        let backends = || service.backends.iter();
        self.identity
            .as_ref()
            .is_none_or(|i| *i == service.identity)
            && self.env.as_ref().is_none_or(|e| *e == service.env)
            && self
                .cluster
                .as_ref()
                .is_none_or(|c| backends().any(|(name, _)| name.as_str() == c))
            && self.namespace.as_ref().is_none_or(|ns| {
                backends()
                    .flat_map(|(_, list)| list)
                    .any(|b| b.service.namespace == *ns)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{cluster, greeting};
    use crate::registry::{Registry, RegistryConfig};

    #[test]
    fn hosts_are_read_as_dns_names_and_unknown_suffixes_do_not_exist() {
        let greeting = Host::build("prod", "greeting", "global").unwrap();
        assert_eq!(host("Prod.Greeting.global.", "global"), Ok(Some(greeting)));
        assert_eq!(host("prod.greeting.mesh", "global"), Ok(None));
        assert_eq!(host("global", "global"), Ok(None));
        let err = host("prod.gr_eeting.global", "global").unwrap_err();
        assert_eq!(err.field, "host");
        assert!(err.reason.contains("gr_eeting"), "{err}");
        assert_eq!(host("", "global").unwrap_err().field, "host");
    }

    #[test]
    fn pages_are_bounded_and_tokens_are_hosts() {
        assert_eq!(
            page(0, "", "global"),
            Ok(Page {
                size: 500,
                after: None
            })
        );
        assert_eq!(page(5001, "", "global").unwrap_err().field, "page_size");
        let after = page(10, "prod.a.global", "global").unwrap().after;
        assert_eq!(after, Some(Host::build("prod", "a", "global").unwrap()));
        assert_eq!(
            page(10, "elsewhere.com", "global").unwrap_err().field,
            "page_token"
        );
    }

    #[test]
    fn errors_never_echo_more_than_a_line() {
        let huge = "a.".repeat(100_000);
        let err = host(&huge, "global").unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        let err = Filter::parse(&"x".repeat(100_000), "", "", "").unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn a_cluster_is_a_dns_label_or_every_cluster() {
        assert_eq!(super::cluster(""), Ok(None));
        assert_eq!(super::cluster("east"), Ok(Some(ClusterName::new("east"))));
        assert_eq!(super::cluster("East").unwrap_err().field, "cluster");
    }

    #[test]
    fn a_malformed_filter_names_its_field() {
        assert_eq!(Filter::parse("", "", "", ""), Ok(Filter::default()));
        for (args, field) in [
            (["east_1", "", "", ""], "cluster"),
            (["", "a..b", "", ""], "identity"),
            (["", "", "pr.od", ""], "env"),
            (["", "", "", "-ns"], "namespace"),
        ] {
            let err = Filter::parse(args[0], args[1], args[2], args[3]).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn every_field_set_must_match() {
        let mut r = Registry::new(RegistryConfig::default());
        r.apply(cluster("east"));
        for d in greeting("east", &[("", "a")]) {
            r.apply(d);
        }
        let view = r.publish();
        let service = view.services().next().unwrap();
        let matches = |c: &str, i: &str, e: &str, n: &str| {
            Filter::parse(c, i, e, n).unwrap().matches(service)
        };
        assert!(matches("", "", "", ""));
        assert!(matches("east", "Greeting", "prod", "sample"));
        assert!(!matches("west", "", "", ""));
        assert!(!matches("", "other", "", ""));
        assert!(!matches("", "", "staging", ""));
        assert!(!matches("", "", "", "elsewhere"));
    }
}
