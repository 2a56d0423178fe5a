use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{IdentityKeys, MetaKey};
use crate::model::{validate_dns_label, validate_identity};

/// The non-empty value of `key` on `meta`.
pub(super) fn lookup<'a>(key: &MetaKey, meta: &'a ObjectMeta) -> Option<&'a str> {
    let (map, key) = match key {
        MetaKey::Label(k) => (meta.labels.as_ref(), k),
        MetaKey::Annotation(k) => (meta.annotations.as_ref(), k),
    };
    map?.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// The first key present, looked up on the pod template first and then on the workload
/// itself, with the key it came from (for error messages).
fn first<'a>(keys: &'a [MetaKey], metas: &[&'a ObjectMeta]) -> Option<(&'a MetaKey, &'a str)> {
    keys.iter()
        .find_map(|key| metas.iter().find_map(|m| lookup(key, m)).map(|v| (key, v)))
}

fn describe(key: &MetaKey) -> String {
    match key {
        MetaKey::Label(k) => format!("label {k}"),
        MetaKey::Annotation(k) => format!("annotation {k}"),
    }
}

/// The workload's identity (lower-cased), `Ok(None)` when it has none (not federated), or
/// an error naming the key whose value is unusable.
pub fn derive_identity(
    keys: &IdentityKeys,
    template: &ObjectMeta,
    workload: &ObjectMeta,
) -> Result<Option<String>, String> {
    let Some((key, value)) = first(&keys.identity, &[template, workload]) else {
        return Ok(None);
    };
    let value = value.to_ascii_lowercase();
    validate_identity(&value)
        .map_err(|reason| format!("identity {value:?} from {}: {reason}", describe(key)))?;
    Ok(Some(value))
}

/// The workload's env (lower-cased), the configured default when no key is set, or an
/// error naming the key whose value is unusable.
pub fn derive_env(
    keys: &IdentityKeys,
    template: &ObjectMeta,
    workload: &ObjectMeta,
) -> Result<String, String> {
    let Some((key, value)) = first(&keys.env, &[template, workload]) else {
        return Ok(keys.default_env.clone());
    };
    let value = value.to_ascii_lowercase();
    validate_dns_label(&value)
        .map_err(|reason| format!("env {value:?} from {}: {reason}", describe(key)))?;
    Ok(value)
}

/// How the workload's env and identity were written, `env.identity`, when either has an
/// upper-case letter; empty when both are lower-case. Global names are lower-case, so
/// `Payments` and `payments` make the same host: the registry uses this to tell them apart
/// and report the collision instead of merging two services.
pub fn derive_spelling(
    keys: &IdentityKeys,
    template: &ObjectMeta,
    workload: &ObjectMeta,
) -> String {
    let identity = first(&keys.identity, &[template, workload]).map_or("", |(_, v)| v);
    let env = first(&keys.env, &[template, workload]).map_or("", |(_, v)| v);
    if identity
        .chars()
        .chain(env.chars())
        .any(|c| c.is_ascii_uppercase())
    {
        format!("{env}.{identity}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        ObjectMeta {
            labels: map(labels),
            annotations: map(annotations),
            ..Default::default()
        }
    }

    #[test]
    fn identity_label_beats_annotation_and_template_beats_workload() {
        let keys = IdentityKeys::default();
        let template = meta(&[("identity", "Greeting")], &[("identity", "other")]);
        let workload = meta(&[("identity", "workload-level")], &[]);
        assert_eq!(
            derive_identity(&keys, &template, &workload)
                .unwrap()
                .as_deref(),
            Some("greeting")
        );
        let template = meta(&[], &[("identity", "from-annotation")]);
        assert_eq!(
            derive_identity(&keys, &template, &workload)
                .unwrap()
                .as_deref(),
            Some("workload-level"),
            "a label on the workload comes before an annotation"
        );
        assert_eq!(
            derive_identity(&keys, &template, &meta(&[], &[]))
                .unwrap()
                .as_deref(),
            Some("from-annotation")
        );
    }

    #[test]
    fn no_identity_means_not_federated() {
        let keys = IdentityKeys::default();
        assert_eq!(
            derive_identity(&keys, &meta(&[], &[]), &meta(&[], &[])),
            Ok(None)
        );
        assert_eq!(
            derive_identity(&keys, &meta(&[("identity", "")], &[]), &meta(&[], &[])),
            Ok(None)
        );
    }

    #[test]
    fn invalid_identity_names_the_key() {
        let keys = IdentityKeys::default();
        let err = derive_identity(&keys, &meta(&[("identity", "a_b")], &[]), &meta(&[], &[]))
            .unwrap_err();
        assert!(err.contains("label identity"), "{err}");
        assert!(err.contains("\"a_b\""), "{err}");
    }

    #[test]
    fn env_precedence_follows_admiral() {
        let keys = IdentityKeys::default();
        let empty = meta(&[], &[]);
        let all = meta(
            &[("admiral.io/env", "l-admiral"), ("env", "l-env")],
            &[
                ("federator.io/env", "ours"),
                ("admiral.io/env", "a-admiral"),
            ],
        );
        assert_eq!(derive_env(&keys, &all, &empty).unwrap(), "ours");
        let no_ours = meta(
            &[("admiral.io/env", "l-admiral"), ("env", "l-env")],
            &[("admiral.io/env", "a-admiral")],
        );
        assert_eq!(derive_env(&keys, &no_ours, &empty).unwrap(), "a-admiral");
        let labels_only = meta(&[("admiral.io/env", "l-admiral"), ("env", "l-env")], &[]);
        assert_eq!(
            derive_env(&keys, &labels_only, &empty).unwrap(),
            "l-admiral"
        );
        assert_eq!(
            derive_env(&keys, &meta(&[("env", "Stage")], &[]), &empty).unwrap(),
            "stage"
        );
        assert_eq!(derive_env(&keys, &empty, &empty).unwrap(), "default");
    }

    #[test]
    fn keys_are_configurable() {
        let keys = IdentityKeys {
            identity: vec![MetaKey::label("app.kubernetes.io/name")],
            env: vec![MetaKey::label("stage")],
            default_env: "prod".into(),
        };
        let template = meta(
            &[("app.kubernetes.io/name", "cart"), ("identity", "x")],
            &[],
        );
        assert_eq!(
            derive_identity(&keys, &template, &meta(&[], &[]))
                .unwrap()
                .as_deref(),
            Some("cart")
        );
        assert_eq!(
            derive_env(&keys, &template, &meta(&[], &[])).unwrap(),
            "prod"
        );
    }
}
