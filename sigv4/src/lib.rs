//! sigv4: placeholder, filled by its issue.
