//! Every public function that takes a name, fed arbitrary Unicode: none may panic, and what
//! they accept keeps the promises the rest of federator relies on (lower-case, DNS lengths).

use std::collections::BTreeMap;

use federator::clusters::{SecretPolicy, parse_secret};
use federator::ingest::{IdentityKeys, MetaKey, derive_env, derive_identity, derive_spelling};
use federator::model::{
    ClusterName, Host, validate_dns_label, validate_identity, validate_label_value,
};
use federator_dns::Zone;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;

/// Any text, weighted towards what breaks naive code: dots, dashes, upper case,
/// multi-byte characters, and lengths around the DNS limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9.\\-_]{0,70}",
        "[a-zé日\\.]{55,70}",
        "\\PC{0,300}",
    ]
}

fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn hosts_are_lower_case_dns_names_or_an_error(env in text(), identity in text(), suffix in text()) {
        if let Ok(host) = Host::build(&env, &identity, &suffix) {
            let name = host.as_str();
            prop_assert!(name.len() <= 253);
            prop_assert!(name.split('.').all(|l| !l.is_empty() && l.len() <= 63));
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
        }
    }

    #[test]
    fn validators_never_panic_and_accept_only_ascii(value in text()) {
        for result in [validate_dns_label(&value), validate_identity(&value), validate_label_value(&value)] {
            if result.is_ok() {
                prop_assert!(value.is_ascii() && !value.is_empty() && value.len() <= 63);
            }
        }
        let _ = ClusterName::new(&value).to_string();
    }

    #[test]
    fn zones_never_panic_on_any_query_name(zone in text(), name in text()) {
        if let Ok(zone) = Zone::new(&zone) {
            let relative = zone.relative(&name);
            prop_assert_eq!(relative.is_some(), zone.contains(&name));
            if let Some(head) = relative {
                prop_assert!(name.starts_with(head));
            }
        }
        if let Ok(zone) = Zone::new("global") {
            let _ = zone.relative(&name);
        }
    }

    #[test]
    fn identities_from_any_label_are_valid_or_an_error(identity in text(), env in text()) {
        let keys = IdentityKeys {
            identity: vec![MetaKey::label("identity")],
            env: vec![MetaKey::label("env")],
            default_env: "default".into(),
        };
        let m = meta(&[("identity", &identity), ("env", &env)]);
        let empty = ObjectMeta::default();
        if let Ok(Some(id)) = derive_identity(&keys, &m, &empty) {
            prop_assert_eq!(&id, &id.to_ascii_lowercase());
        }
        if let Ok(e) = derive_env(&keys, &m, &empty) {
            prop_assert_eq!(&e, &e.to_ascii_lowercase());
        }
        let spelling = derive_spelling(&keys, &m, &empty);
        prop_assert_eq!(spelling.is_empty(), !format!("{identity}{env}").chars().any(|c| c.is_ascii_uppercase()));
    }

    #[test]
    fn secrets_with_any_keys_annotations_and_values_parse_or_report(
        key in text(),
        network in text(),
        value in prop::collection::vec(any::<u8>(), 0..200),
        yaml in text(),
    ) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("s".into()),
                namespace: Some("federator".into()),
                annotations: Some(BTreeMap::from([("federator.io/network".to_owned(), network)])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                (key, ByteString(value)),
                ("yaml".to_owned(), ByteString(yaml.into_bytes())),
            ])),
            ..Default::default()
        };
        let parsed = parse_secret(&secret, &SecretPolicy::default());
        for problem in parsed.keys.iter().filter_map(|r| r.as_ref().err()).chain(&parsed.problems) {
            prop_assert!(problem.to_string().starts_with("Secret federator/s"));
        }
    }
}
