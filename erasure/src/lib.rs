//! erasure: placeholder, filled by its issue.
