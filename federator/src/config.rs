//! The settings every part of federator reads, gathered in one place so the CLI (and later
//! a config file) can set each default of DESIGN.md.

use crate::ingest::IngestConfig;
use crate::registry::RegistryConfig;
use crate::render::RenderOptions;

/// Every setting, with federator's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// How cluster objects are read.
    pub ingest: IngestConfig,
    /// Host suffix and VIP range.
    pub registry: RegistryConfig,
    /// Sync namespace, cluster domain, outlier defaults.
    pub render: RenderOptions,
}
