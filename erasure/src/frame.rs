//! Shard block framing: `[blake3(shard bytes): HASH_LEN][shard bytes]`. Owns hashing and the
//! check of one framed block; it must never decide what to do with a bad block (the decoder
//! treats it as missing).

use crate::HASH_LEN;

/// Writes the blake3 hash of `framed[HASH_LEN..]` into `framed[..HASH_LEN]`.
/// `framed` must be at least `HASH_LEN` bytes long.
pub(crate) fn seal(framed: &mut [u8]) {
    let (head, body) = framed.split_at_mut(HASH_LEN);
    head.copy_from_slice(blake3::hash(body).as_bytes());
}

/// True when `framed` is exactly `HASH_LEN + shard_len` bytes and its hash matches its body.
/// The comparison is blake3's constant-time equality.
pub fn verify_framed(framed: &[u8], shard_len: usize) -> bool {
    if framed.len() != HASH_LEN + shard_len {
        return false;
    }
    let (head, body) = framed.split_at(HASH_LEN);
    let Ok(expected) = <[u8; HASH_LEN]>::try_from(head) else {
        return false;
    };
    blake3::hash(body) == blake3::Hash::from_bytes(expected)
}
