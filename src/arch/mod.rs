//! Context switch backends (stub: filled in by the arch/stack work).
