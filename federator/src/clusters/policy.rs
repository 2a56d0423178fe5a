//! What a cluster Secret's kubeconfig may contain.
//!
//! Whoever can write a labelled Secret in federator's namespace should get exactly one power:
//! registering a cluster with the credentials they hand over. Everything in a kubeconfig that
//! reaches beyond the Secret itself (running a command, reading a file of federator's pod,
//! skipping TLS verification, talking in clear text) would give them more: federator's own
//! service-account token sent to a server of their choice, a command run next to every
//! cluster's credentials. So by default only inline credentials pass; an operator opts in per
//! kind, knowing the risk. Istio refuses the same fields in remote secrets; Admiral does not.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use kube::config::{AuthInfo, Cluster, Context, Kubeconfig};

/// The context a connection uses, as kube picks it: `current-context`, else the first one.
/// Its name, and its body when it is defined. The policy, the checks and the exec removal
/// must all look at the same one.
pub fn current_context(kubeconfig: &Kubeconfig) -> Option<(&str, Option<&Context>)> {
    let name = kubeconfig
        .current_context
        .as_deref()
        .or_else(|| kubeconfig.contexts.first().map(|c| c.name.as_str()))?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref());
    Some((name, context))
}

/// A kind of kubeconfig content refused unless the operator allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Allowance {
    /// `exec` credential plugins: run a command in federator's pod (with its environment).
    Exec,
    /// `tokenFile`, `client-certificate`, `client-key`, `certificate-authority`: read files of
    /// federator's pod, its own service-account token included.
    Files,
    /// `insecure-skip-tls-verify`: anyone on the path can pose as the API server and take the
    /// credentials.
    Insecure,
    /// `http://` servers: credentials in clear text.
    Http,
}

impl Allowance {
    /// Every kind, in flag order.
    pub const ALL: [Allowance; 4] = [Self::Exec, Self::Files, Self::Insecure, Self::Http];

    /// The flag value that allows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Files => "files",
            Self::Insecure => "insecure",
            Self::Http => "http",
        }
    }
}

impl fmt::Display for Allowance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Allowance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown kubeconfig allowance {s:?}; known: exec, files, insecure, http")
            })
    }
}

/// The kinds an operator allowed (`--allow-kubeconfig`); empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeconfigPolicy {
    allowed: BTreeSet<Allowance>,
}

impl KubeconfigPolicy {
    /// A policy allowing `kinds`.
    pub fn allowing(kinds: impl IntoIterator<Item = Allowance>) -> Self {
        Self {
            allowed: kinds.into_iter().collect(),
        }
    }

    /// Whether `kind` is allowed.
    pub fn allows(&self, kind: Allowance) -> bool {
        self.allowed.contains(&kind)
    }
}

/// A field of a kubeconfig the policy refuses: where it is and what allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Path of the field, as kubectl spells it: `users[admin].user.exec`.
    pub field: String,
    /// What would allow it; `None` when nothing does.
    pub allowance: Option<Allowance>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.allowance {
            Some(kind) => write!(
                f,
                "{} is not allowed: use inline credentials (token, client-certificate-data, \
                 client-key-data, certificate-authority-data), or start federator with \
                 --allow-kubeconfig {kind} if you accept the risk",
                self.field
            ),
            None if self.field.ends_with(".server") => write!(
                f,
                "{} is not an https:// URL: federator talks to API servers over TLS only",
                self.field
            ),
            None => write!(
                f,
                "{} is not supported: client-go removed its auth-provider plugins; use inline \
                 credentials or an exec plugin",
                self.field
            ),
        }
    }
}

/// The first field of the cluster and user `kubeconfig`'s current context uses that `policy`
/// refuses. Only what the connection would use is checked; `check_kubeconfig` has made sure
/// the context resolves.
pub fn refusal(kubeconfig: &Kubeconfig, policy: &KubeconfigPolicy) -> Option<Refusal> {
    let (_, context) = current_context(kubeconfig)?;
    let context = context?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster);
    let user = context
        .user
        .as_ref()
        .and_then(|u| kubeconfig.auth_infos.iter().find(|a| &a.name == u));
    let mut found = Vec::new();
    if let Some(named) = cluster
        && let Some(c) = &named.cluster
    {
        cluster_fields(c, &format!("clusters[{}].cluster", named.name), &mut found);
    }
    if let Some(named) = user
        && let Some(u) = &named.auth_info
    {
        user_fields(u, &format!("users[{}].user", named.name), &mut found);
    }
    found
        .into_iter()
        .find(|r| r.allowance.is_none_or(|kind| !policy.allows(kind)))
}

fn cluster_fields(cluster: &Cluster, at: &str, found: &mut Vec<Refusal>) {
    let mut push = |field: &str, allowance: Option<Allowance>| {
        found.push(Refusal {
            field: format!("{at}.{field}"),
            allowance,
        });
    };
    if cluster.insecure_skip_tls_verify == Some(true) {
        push("insecure-skip-tls-verify", Some(Allowance::Insecure));
    }
    let scheme = cluster
        .server
        .as_deref()
        .and_then(|s| s.trim_start().split_once("://"))
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("https") => {}
        Some("http") => push("server (http://)", Some(Allowance::Http)),
        // Anything else is refused outright: safety must not rest on a lower layer
        // refusing unknown schemes.
        _ => push("server", None),
    }
    if cluster.certificate_authority.is_some() {
        push("certificate-authority", Some(Allowance::Files));
    }
}

fn user_fields(user: &AuthInfo, at: &str, found: &mut Vec<Refusal>) {
    let mut push = |field: &str, allowance: Option<Allowance>| {
        found.push(Refusal {
            field: format!("{at}.{field}"),
            allowance,
        });
    };
    if user.exec.is_some() {
        push("exec", Some(Allowance::Exec));
    }
    if user.auth_provider.is_some() {
        push("auth-provider", None);
    }
    if user.token_file.is_some() {
        push("tokenFile", Some(Allowance::Files));
    }
    if user.client_certificate.is_some() {
        push("client-certificate", Some(Allowance::Files));
    }
    if user.client_key.is_some() {
        push("client-key", Some(Allowance::Files));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(cluster: &str, user: &str) -> Kubeconfig {
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{{cluster}}}
users:
- name: u
  user: {{{user}}}
contexts:
- name: ctx
  context: {{cluster: c, user: u}}
current-context: ctx
"
        );
        Kubeconfig::from_yaml(&text).unwrap()
    }

    const SERVER: &str = "server: 'https://10.0.0.1:6443', certificate-authority-data: Zm9v";

    fn refused(cluster: &str, user: &str, policy: &KubeconfigPolicy) -> Option<Refusal> {
        refusal(&kubeconfig(cluster, user), policy)
    }

    #[test]
    fn inline_credentials_pass() {
        let none = KubeconfigPolicy::default();
        assert_eq!(refused(SERVER, "token: abc", &none), None);
        assert_eq!(
            refused(
                SERVER,
                "client-certificate-data: Zm9v, client-key-data: YmFy",
                &none
            ),
            None
        );
    }

    #[test]
    fn every_outside_reach_is_refused_by_default_and_named() {
        let none = KubeconfigPolicy::default();
        let cases = [
            (
                SERVER,
                "exec: {command: touch, apiVersion: client.authentication.k8s.io/v1}",
                "users[u].user.exec",
                Some(Allowance::Exec),
            ),
            (
                SERVER,
                "auth-provider: {name: gcp, config: {cmd-path: /bin/sh}}",
                "users[u].user.auth-provider",
                None,
            ),
            (
                SERVER,
                "tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
                "users[u].user.tokenFile",
                Some(Allowance::Files),
            ),
            (
                SERVER,
                "client-certificate: /etc/c.pem, client-key-data: YmFy",
                "users[u].user.client-certificate",
                Some(Allowance::Files),
            ),
            (
                SERVER,
                "client-certificate-data: Zm9v, client-key: /etc/k.pem",
                "users[u].user.client-key",
                Some(Allowance::Files),
            ),
            (
                "server: 'https://10.0.0.1', certificate-authority: /etc/ca.pem",
                "token: a",
                "clusters[c].cluster.certificate-authority",
                Some(Allowance::Files),
            ),
            (
                "server: 'https://10.0.0.1', insecure-skip-tls-verify: true",
                "token: a",
                "clusters[c].cluster.insecure-skip-tls-verify",
                Some(Allowance::Insecure),
            ),
            (
                "server: 'HTTP://10.0.0.1:8080'",
                "token: a",
                "clusters[c].cluster.server (http://)",
                Some(Allowance::Http),
            ),
            (
                "server: 'unix:///run/x.sock'",
                "token: a",
                "clusters[c].cluster.server",
                None,
            ),
        ];
        for (cluster, user, field, allowance) in cases {
            let r = refused(cluster, user, &none).unwrap_or_else(|| panic!("{user} {cluster}"));
            assert_eq!(r.field, field);
            assert_eq!(r.allowance, allowance);
            let text = r.to_string();
            assert!(text.starts_with(field), "{text}");
            if let Some(kind) = allowance {
                assert!(
                    text.contains(&format!("--allow-kubeconfig {kind}")),
                    "{text}"
                );
                let allowed = KubeconfigPolicy::allowing([kind]);
                assert_eq!(refused(cluster, user, &allowed), None, "{field}");
            } else {
                let all = KubeconfigPolicy::allowing(Allowance::ALL);
                assert!(refused(cluster, user, &all).is_some(), "{field}");
            }
        }
    }

    #[test]
    fn one_allowance_does_not_open_another() {
        let exec_only = KubeconfigPolicy::allowing([Allowance::Exec]);
        let r = refused(
            "server: 'https://10.0.0.1', insecure-skip-tls-verify: true",
            "exec: {command: x, apiVersion: client.authentication.k8s.io/v1}",
            &exec_only,
        )
        .unwrap();
        assert_eq!(r.allowance, Some(Allowance::Insecure));
    }

    #[test]
    fn allowances_parse_from_flag_values() {
        assert_eq!("exec".parse::<Allowance>(), Ok(Allowance::Exec));
        assert_eq!("files".parse::<Allowance>(), Ok(Allowance::Files));
        assert!(
            "token-file"
                .parse::<Allowance>()
                .unwrap_err()
                .contains("known: exec")
        );
    }
}
