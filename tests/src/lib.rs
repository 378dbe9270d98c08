//! Helpers shared by the cross-crate suites.
