//! Errors from kube in words that are safe to log and to put in an Event.
//!
//! kube's own messages may quote what they failed on: a base64 decoder names the offending
//! byte of a key, an exec failure prints the command with its environment and output. Events
//! on the cluster Secret are readable by anyone with the `view` role, so only fixed words and
//! the error's kind leave federator.

use std::error::Error as _;

use kube::config::KubeconfigError;
use kube::runtime::watcher;

use super::exec::ExecError;

/// What is wrong with a kubeconfig that parsed but cannot be loaded.
pub fn kubeconfig_error(error: &KubeconfigError) -> String {
    use KubeconfigError as E;
    let what = match error {
        E::CurrentContextNotSet => "no current context is set",
        E::KindMismatch | E::ApiVersionMismatch => "it is not a kubeconfig (kind or apiVersion)",
        E::LoadContext(_) => "the current context is not defined",
        E::LoadClusterOfContext(_) => "the context's cluster is not defined",
        E::MissingClusterUrl => "the cluster has no server address",
        E::ParseClusterUrl(_) => "the server address is not a valid URL",
        E::ParseProxyUrl(_) => "proxy-url is not a valid URL",
        E::LoadCertificateAuthority(_) => {
            "certificate-authority-data is not valid base64 (or its file cannot be read)"
        }
        E::LoadClientCertificate(_) => {
            "client-certificate-data is not valid base64 (or its file cannot be read)"
        }
        E::LoadClientKey(_) => "client-key-data is not valid base64 (or its file cannot be read)",
        E::ParseCertificates(_) => "a certificate is not valid PEM",
        E::Parse(_) => "the YAML does not parse",
        _ => "it cannot be loaded",
    };
    format!("kubeconfig unusable: {what}")
}

/// What went wrong talking to (or building a client for) an API server.
pub fn kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => match status.code {
            401 => "the API server rejects the credentials (401 Unauthorized)".into(),
            403 => "the credentials may not read the API server's version (403 Forbidden)".into(),
            code => format!(
                "the API server answered {code} {}",
                safe_word(&status.reason)
            ),
        },
        kube::Error::Auth(_) => {
            "the credentials cannot be loaded (token file or certificate)".into()
        }
        kube::Error::RustlsTls(_) => {
            "the TLS client cannot be built: check the certificate, key and CA data".into()
        }
        kube::Error::InferKubeconfig(e) => kubeconfig_error(e),
        kube::Error::ProxyProtocolUnsupported { .. }
        | kube::Error::ProxyProtocolDisabled { .. } => {
            "proxy-url uses a protocol federator does not support".into()
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => transport(error),
        kube::Error::InferConfig(_) | kube::Error::Discovery(_) => {
            "the client cannot be configured".into()
        }
        _ => "the request failed".into(),
    }
}

/// Why a list or watch of `resource` (as RBAC names it: `discovery.k8s.io endpointslices`)
/// failed, in words safe for an Event: what failed, the status code and what to do about it.
/// [`kube_error`]'s words for a 403 are about the probe's version request, not a watch.
pub fn watch_error(error: &watcher::Error, resource: &str) -> String {
    let (verb, error) = match error {
        watcher::Error::InitialListFailed(e) => ("list", e),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => ("watch", e),
        watcher::Error::WatchError(status) => return status_words("watch", status, resource),
        watcher::Error::NoResourceVersion => {
            return "watch impossible: the API server sent no resourceVersion".into();
        }
    };
    match error {
        kube::Error::Api(status) => status_words(verb, status, resource),
        other => format!("{verb} failed: {}", kube_error(other)),
    }
}

fn status_words(verb: &str, status: &kube::core::Status, resource: &str) -> String {
    match status.code {
        403 => format!("{verb} forbidden (403): grant list and watch on {resource}"),
        401 => format!("{verb} unauthorized (401): the API server rejects the credentials"),
        code => format!(
            "{verb} failed: the API server answered {code} {}",
            safe_word(&status.reason)
        ),
    }
}

/// A transport failure: our own exec error if that is the cause, else the innermost I/O or
/// TLS error's message (these name errno values and certificate problems, never request
/// contents).
fn transport(error: &kube::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    let mut innermost = None;
    while let Some(e) = source {
        if let Some(exec) = e.downcast_ref::<ExecError>() {
            return exec.to_string();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            innermost = Some(io_words(io));
        } else if innermost.is_none() {
            innermost = Some(safe_word(&e.to_string()));
        }
        source = e.source();
    }
    match innermost {
        Some(words) => format!("cannot connect: {words}"),
        None => "cannot connect".into(),
    }
}

fn io_words(error: &std::io::Error) -> String {
    match error.get_ref() {
        // rustls and hyper put their errors inside io::Error; their texts are fixed words.
        Some(inner) => safe_word(&inner.to_string()),
        None => error.kind().to_string(),
    }
}

/// At most 160 characters, one line: a bound on whatever a server or library says.
fn safe_word(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_say_code_and_reason_only() {
        let status =
            kube::core::Status::failure("token s3cret echoed", "Unauthorized").with_code(401);
        let text = kube_error(&kube::Error::Api(Box::new(status)));
        assert!(text.contains("401") && !text.contains("s3cret"), "{text}");
        let status =
            kube::core::Status::failure("token s3cret echoed", "TooManyRequests").with_code(429);
        let text = kube_error(&kube::Error::Api(Box::new(status)));
        assert_eq!(text, "the API server answered 429 TooManyRequests");
    }

    #[test]
    fn watch_errors_say_what_failed_and_what_to_grant() {
        let status = |code, reason: &str| {
            Box::new(kube::core::Status::failure("user s3cret cannot list", reason).with_code(code))
        };
        let resource = "discovery.k8s.io endpointslices";
        let forbidden =
            watcher::Error::InitialListFailed(kube::Error::Api(status(403, "Forbidden")));
        assert_eq!(
            watch_error(&forbidden, resource),
            "list forbidden (403): grant list and watch on discovery.k8s.io endpointslices"
        );
        let expired = watcher::Error::WatchError(status(410, "Expired"));
        assert_eq!(
            watch_error(&expired, resource),
            "watch failed: the API server answered 410 Expired"
        );
        let exec = ExecError::TimedOut(std::time::Duration::from_secs(3));
        let transport = watcher::Error::WatchFailed(kube::Error::Service(Box::new(exec.clone())));
        assert_eq!(
            watch_error(&transport, resource),
            format!("watch failed: {exec}")
        );
        for error in [forbidden, expired, transport] {
            assert!(!watch_error(&error, resource).contains("s3cret"));
        }
    }

    #[test]
    fn exec_failures_inside_transport_errors_are_our_fixed_words() {
        let exec = ExecError::TimedOut(std::time::Duration::from_secs(3));
        let error = kube::Error::Service(Box::new(exec.clone()));
        assert_eq!(kube_error(&error), exec.to_string());
    }

    #[test]
    fn kubeconfig_errors_met_while_building_a_client_name_the_field() {
        let error = kube::Error::InferKubeconfig(KubeconfigError::MissingClusterUrl);
        assert_eq!(
            kube_error(&error),
            "kubeconfig unusable: the cluster has no server address"
        );
    }

    #[test]
    fn long_or_multi_line_texts_are_cut() {
        let text = format!("first line\nsecond {}", "x".repeat(500));
        assert_eq!(safe_word(&text), "first line");
        assert_eq!(safe_word(&"y".repeat(500)).len(), 160);
    }
}
