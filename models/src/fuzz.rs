//! Entry point of the `checkpoint` fuzz target (`fuzz/` at the workspace root, cargo-fuzz on
//! nightly): the checkpoint decoder. It takes arbitrary bytes, must never panic, and checks what
//! must hold of a successful parse. The stable tests below run it on its seed corpus
//! (`fuzz/seeds/checkpoint/`) and on thousands of deterministic mutations
//! ([`gumbolt_priors::fuzz::Mutator`]), so that CI exercises the decoder without nightly. Not
//! part of the stable API.

use std::path::Path;

use crate::checkpoint::{self, TensorData};

/// The `checkpoint` target: [`checkpoint::decode`] of the input, and of the input with its
/// payload length and checksum repaired (so that mutations reach the header and the tensor
/// table instead of stopping at the checksum). A decoded checkpoint must survive an
/// encode/decode round trip bit for bit; its metadata is also parsed as a training
/// checkpoint's.
pub fn checkpoint(data: &[u8]) {
    decode_and_round_trip(data);
    if data.len() >= 36 {
        let mut fixed = data.to_vec();
        let h = u64::from_le_bytes(fixed[16..24].try_into().unwrap());
        let room = (fixed.len() - 36) as u64;
        if h <= room {
            fixed[24..32].copy_from_slice(&(room - h).to_le_bytes());
        }
        let body = fixed.len() - 4;
        let crc = checkpoint::crc32(&fixed[..body]);
        fixed[body..].copy_from_slice(&crc.to_le_bytes());
        decode_and_round_trip(&fixed);
    }
}

fn decode_and_round_trip(data: &[u8]) {
    let path = Path::new("fuzz.ckpt");
    let raw = match checkpoint::decode(path, data) {
        Ok(raw) => raw,
        Err(e) => {
            assert!(e.to_string().contains("fuzz.ckpt"), "{e}");
            return;
        }
    };
    let _ = raw.meta_as::<crate::train::CheckpointMeta>();
    let bits = |r: &checkpoint::RawCheckpoint| {
        r.tensors
            .iter()
            .map(|t| {
                assert_eq!(t.shape.iter().product::<usize>(), t.data.len());
                let v: Vec<u32> = match &t.data {
                    TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
                    TensorData::U32(v) => v.clone(),
                };
                (t.name.clone(), t.shape.clone(), t.data.dtype(), v)
            })
            .collect::<Vec<_>>()
    };
    let bytes =
        checkpoint::encode(path, &raw.meta, &raw.tensors).expect("a decoded checkpoint encodes");
    let back = checkpoint::decode(path, &bytes).expect("an encoded checkpoint decodes");
    assert_eq!(back.meta, raw.meta);
    assert_eq!(bits(&back), bits(&raw));
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_priors::fuzz::run_seeds_and_mutations;

    /// The seeds reach the deep code: a training checkpoint's metadata (otherwise the fuzzer
    /// rarely gets there).
    #[test]
    fn seeds_reach_the_success_paths() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds/checkpoint/training_meta.ckpt");
        let raw = checkpoint::decode(&p, &std::fs::read(&p).unwrap()).unwrap();
        raw.meta_as::<crate::train::CheckpointMeta>().unwrap();
    }

    #[test]
    fn checkpoint_seeds_and_mutations_never_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/checkpoint");
        run_seeds_and_mutations(&dir, checkpoint, 5000, 0x636b7074);
    }
}
