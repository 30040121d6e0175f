//! Peer workloads of this area (filled in by its issue).

/// Run `workload` if it belongs to this file.
pub fn dispatch(_workload: &str) -> bool {
    false
}
