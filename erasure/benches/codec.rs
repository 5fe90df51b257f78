//! Criterion benchmarks of the erasure codec (filled in below).

fn main() {}
