use std::collections::BTreeSet;

use super::{IngestError, Ingested, object_key};
use crate::crd::Dependency;
use crate::model::{DependencyInfo, Object, PolicySource, validate_identity};

/// A Dependency, validated: the source must be a valid identity; a destination that is not
/// one is left out with a warning naming it (the rest still applies). Identities are
/// lower-cased, as global hosts are.
pub fn dependency(dependency: &Dependency) -> Result<Ingested, IngestError> {
    let key = object_key("Dependency", &dependency.metadata)?;
    let spec = &dependency.spec;
    let source = spec.source.to_ascii_lowercase();
    validate_identity(&source).map_err(|reason| {
        IngestError::new(
            "Dependency",
            &key,
            format!("spec.source {source:?}: {reason}"),
        )
    })?;
    let mut warnings = Vec::new();
    let mut destinations = BTreeSet::new();
    for (index, written) in spec.destinations.iter().enumerate() {
        let identity = written.to_ascii_lowercase();
        match validate_identity(&identity) {
            Ok(()) => {
                destinations.insert(identity);
            }
            Err(reason) => warnings.push(format!(
                "spec.destinations[{index}] {identity:?} left out: {reason}"
            )),
        }
    }
    Ok(Ingested {
        object: Object::Dependency(DependencyInfo {
            api: PolicySource::Federator,
            key,
            source,
            destinations: destinations.into_iter().collect(),
            generation: dependency.metadata.generation,
        }),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::DependencySpec;

    fn dependency_of(source: &str, destinations: &[&str]) -> Dependency {
        let mut d = Dependency::new(
            "web",
            DependencySpec {
                source: source.into(),
                destinations: destinations.iter().map(|s| s.to_string()).collect(),
            },
        );
        d.metadata.namespace = Some("team".into());
        d
    }

    #[test]
    fn destinations_are_lower_cased_sorted_and_deduplicated() {
        let ingested =
            dependency(&dependency_of("Web", &["payments", "Catalog", "catalog"])).unwrap();
        let Object::Dependency(info) = ingested.object else {
            panic!("not a dependency");
        };
        assert_eq!(info.source, "web");
        assert_eq!(info.destinations, ["catalog", "payments"]);
        assert!(ingested.warnings.is_empty());
    }

    #[test]
    fn an_invalid_destination_is_left_out_and_named() {
        let ingested = dependency(&dependency_of("web", &["payments", "not_an.identity"])).unwrap();
        let Object::Dependency(info) = ingested.object else {
            panic!("not a dependency");
        };
        assert_eq!(info.destinations, ["payments"]);
        assert_eq!(ingested.warnings.len(), 1);
        assert!(
            ingested.warnings[0].contains("spec.destinations[1]"),
            "{:?}",
            ingested.warnings
        );
    }

    #[test]
    fn an_invalid_source_is_an_error_naming_the_object() {
        let err = dependency(&dependency_of("", &["payments"])).unwrap_err();
        assert_eq!(err.kind, "Dependency");
        assert_eq!(err.key, "team/web");
        assert!(err.reason.contains("spec.source"), "{err}");
    }
}
