//! Observe: what the ranks report (their jobs' traffic, kept per run) and the site maps
//! pushed back to them.

pub mod registry;
pub mod sitemaps;

pub use registry::{Registry, RegistryError, SharedJob};
pub use sitemaps::SiteMaps;
