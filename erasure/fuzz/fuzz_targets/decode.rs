//! cargo-fuzz target: arbitrary bytes choose a geometry, a payload and damage operations on
//! the encoded shard blocks (drop, flip, truncate, extend, replace with raw input bytes,
//! restore); the decoder must never panic and must return either the exact bytes or
//! `TooFewShards`. The oracle lives in tests/support/decode_check.rs, shared with a plain
//! test, so CI exercises it without the fuzzer. This file must stay a thin wrapper.

#![no_main]

#[path = "../../tests/support/decode_check.rs"]
mod decode_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    decode_check::check_decoder(data);
});
