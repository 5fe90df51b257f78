//! The fuzz target's oracle run over a few thousand random inputs, so CI exercises the
//! decoder's robustness without cargo-fuzz. Owns no oracle logic (see support/decode_check.rs).

#[path = "support/decode_check.rs"]
mod decode_check;

use rand::{Rng, SeedableRng};

#[test]
fn decoder_never_panics_or_returns_wrong_bytes_on_random_damage() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x07e5_5e7a);
    for _ in 0..4000 {
        // Short inputs damage few shards (mostly decodable); long ones damage many.
        let max_len = if rng.gen_bool(0.5) { 40 } else { 400 };
        let len = rng.gen_range(0..max_len);
        let mut input: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Bias towards small block sizes and objects so most inputs decode several blocks.
        if input.len() > 6 {
            input[2] = rng.gen_range(0..64);
            input[3] = 0;
        }
        decode_check::check_decoder(&input);
    }
}

#[test]
fn decoder_oracle_handles_empty_and_tiny_inputs() {
    for len in 0..8 {
        for fill in [0u8, 1, 0x7f, 0xff] {
            decode_check::check_decoder(&vec![fill; len]);
        }
    }
}
