//! conformance: real-client checks and drills against a running tessera.
