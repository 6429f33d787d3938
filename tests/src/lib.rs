//! Shared helpers for ringlink's integration tests.
