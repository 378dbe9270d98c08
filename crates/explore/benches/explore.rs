//! Schedules per second for a small protocol. Placeholder replaced below.
fn main() {}
