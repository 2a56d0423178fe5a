use std::fmt;

/// A zone name that is not a valid DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid zone {zone:?}: {reason}")]
pub struct ZoneError {
    /// The zone as given.
    pub zone: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// A zone federator is authoritative for, kept lower-case and fully qualified, so that
/// membership tests are a suffix comparison on label boundaries whatever the query's case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Zone {
    /// Lower-case, with trailing dot: `global.`.
    name: String,
}

impl Zone {
    /// Parses `global`, `global.` or `mesh.example.com`.
    pub fn new(name: &str) -> Result<Self, ZoneError> {
        let err = |reason| ZoneError {
            zone: name.to_owned(),
            reason,
        };
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if trimmed.is_empty() {
            return Err(err("the root zone is not federator's to answer"));
        }
        if trimmed.len() > 253 {
            return Err(err("longer than 253 characters"));
        }
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(err("every label must have 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(err("labels may hold only letters, digits and '-'"));
            }
        }
        Ok(Self {
            name: format!("{}.", trimmed.to_ascii_lowercase()),
        })
    }

    /// The zone name, lower-case with trailing dot.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether `name` (any case, with or without trailing dot) is the zone apex or below it.
    pub fn contains(&self, name: &str) -> bool {
        self.relative(name).is_some()
    }

    /// The part of `name` below the zone (`prod.greeting` for `prod.greeting.global.`), an
    /// empty string for the apex, `None` outside the zone.
    pub fn relative<'a>(&self, name: &'a str) -> Option<&'a str> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let zone = &self.name[..self.name.len() - 1];
        if name.len() == zone.len() {
            return name.eq_ignore_ascii_case(zone).then_some("");
        }
        let split = name.len().checked_sub(zone.len() + 1)?;
        // Bytes, not chars: the input may be any text, and a byte index inside a multi-byte
        // character must answer "not in the zone", never panic.
        let tail = name.as_bytes().get(split..)?;
        let in_zone =
            tail.first() == Some(&b'.') && tail[1..].eq_ignore_ascii_case(zone.as_bytes());
        // The zone is ASCII, so a match means `split` is a character boundary.
        in_zone.then(|| name.get(..split)).flatten()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_are_normalised() {
        assert_eq!(Zone::new("Global").unwrap().as_str(), "global.");
        assert_eq!(
            Zone::new("mesh.example.com.").unwrap().as_str(),
            "mesh.example.com."
        );
    }

    #[test]
    fn bad_zone_names_are_rejected() {
        for bad in ["", ".", "a..b", "a_b", &"x".repeat(64)] {
            assert!(Zone::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn membership_is_case_insensitive_and_on_label_boundaries() {
        let zone = Zone::new("global").unwrap();
        assert_eq!(
            zone.relative("prod.Greeting.GLOBAL."),
            Some("prod.Greeting")
        );
        assert_eq!(zone.relative("global"), Some(""));
        assert_eq!(zone.relative("GLOBAL."), Some(""));
        assert!(!zone.contains("notglobal."));
        assert!(!zone.contains("prod.greeting.global.example.com."));
        assert!(!zone.contains("lobal."));
        assert!(!zone.contains(""));
        // A multi-byte character where the split would fall.
        assert_eq!(zone.relative("ä.global"), Some("ä"));
        assert_eq!(zone.relative("é\u{301}global"), None);
        assert_eq!(zone.relative("日本global."), None);
    }
}
