//! Coroutine stacks (stub: filled in by the arch/stack work).
