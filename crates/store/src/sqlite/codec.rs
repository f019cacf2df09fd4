//! How a value is stored in the `kv` table's `value` column; its `codec` column
//! names the form.
//!
//! Objects are JSON with much repetition (managedFields above all): LZ4 shrinks
//! a Deployment of 8.5 KB to about a quarter, so a write puts one page into the
//! WAL instead of two or three, and the checkpoint copies that much less. Fsync
//! time under a steady stream of writes follows the bytes written, and it is
//! what a write's latency waits for. Values are packed by the writing task,
//! before the request reaches the writer thread, whose work every write of a
//! busy key waits for in turn. Tried (late 2026): packing a followed write's
//! value on the writer thread instead, so that it runs beside the next
//! writer's turn of the key rather than in it: 1-17 % more patches/s in
//! process (`wharf bench patch --in-process`, 3 alternated pairs), but over
//! HTTPS 10 % fewer to 3 % more (3 pairs), where the client and TLS leave
//! no CPU idle for the writer thread's extra work.
//!
//! Invariants:
//! - codec 0 is the value as given. Rows written before this column existed
//!   read as 0, so an older data directory needs no rewrite.
//! - codec 1 is an LZ4 block behind its uncompressed length (4 bytes, little
//!   endian). It is used only when it saves at least an eighth, so small or
//!   incompressible values stay as given.
//! - decoding checks the declared length against [`crate::MAX_VALUE_BYTES`]
//!   before allocating, so a damaged row gives an error, not a huge allocation.

use bytes::Bytes;
use rusqlite::types::Type;

/// The value is stored as given.
pub(super) const RAW: i64 = 0;
/// The value is an LZ4 block behind its length.
pub(super) const LZ4: i64 = 1;

/// Values shorter than this are stored as given: they fit a page anyway.
const MIN_COMPRESS: usize = 512;

/// Why a stored value could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(super) enum DecodeError {
    #[error("unknown value codec {0}")]
    Unknown(i64),
    #[error("compressed value declares {0} bytes, more than any value may hold")]
    TooLarge(usize),
    #[error("compressed value is damaged: {0}")]
    Lz4(#[from] lz4_flex::block::DecompressError),
    #[error("compressed value declares {declared} bytes but holds {actual}")]
    Length { declared: usize, actual: usize },
}

/// The LZ4 form of `value` (codec [`LZ4`]), if storing it so pays; else the
/// value is stored as given (codec [`RAW`]).
pub(super) fn pack(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() < MIN_COMPRESS {
        return None;
    }
    let packed = lz4_flex::block::compress_prepend_size(value);
    (packed.len() <= value.len() - value.len() / 8).then_some(packed)
}

/// The codec and bytes to store for `value`, given what [`pack`] made of it.
pub(super) fn stored<'a>(value: &'a [u8], packed: Option<&'a [u8]>) -> (i64, &'a [u8]) {
    match packed {
        Some(p) => (LZ4, p),
        None => (RAW, value),
    }
}

/// The value in column `col` of a row (`None` for a tombstone's NULL), decoded
/// by the codec in column `col + 1`: every query selects `value, codec`.
pub(super) fn value(row: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<Option<Bytes>> {
    row.get::<_, Option<Vec<u8>>>(col)?
        .map(|v| decode(col, row.get(col + 1)?, v))
        .transpose()
}

/// The value stored as `stored` with `codec`. The error is a rusqlite
/// conversion error for column `col`, so row closures can use it as they are.
fn decode(col: usize, codec: i64, stored: Vec<u8>) -> rusqlite::Result<Bytes> {
    decode_value(codec, stored)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, Type::Blob, Box::new(e)))
}

fn decode_value(codec: i64, stored: Vec<u8>) -> Result<Bytes, DecodeError> {
    match codec {
        RAW => Ok(Bytes::from(stored)),
        LZ4 => {
            let (declared, body) = lz4_flex::block::uncompressed_size(&stored)?;
            if declared > crate::MAX_VALUE_BYTES {
                return Err(DecodeError::TooLarge(declared));
            }
            let out = lz4_flex::block::decompress(body, declared)?;
            if out.len() != declared {
                return Err(DecodeError::Length {
                    declared,
                    actual: out.len(),
                });
            }
            Ok(Bytes::from(out))
        }
        other => Err(DecodeError::Unknown(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(n: usize) -> Vec<u8> {
        let mut s = String::from("{\"metadata\":{\"managedFields\":[");
        for i in 0..n {
            s.push_str(&format!(
                "{{\"manager\":\"m{i}\",\"operation\":\"Apply\",\"fieldsV1\":{{\"f:spec\":{{\"f:replicas\":{{}}}}}}}},"
            ));
        }
        s.push_str("]}}");
        s.into_bytes()
    }

    #[test]
    fn round_trips_and_shrinks_repetitive_values() {
        let v = object(100);
        let packed = pack(&v);
        let (codec, bytes) = stored(&v, packed.as_deref());
        assert_eq!(codec, LZ4);
        assert!(bytes.len() * 4 < v.len(), "{} of {}", bytes.len(), v.len());
        assert_eq!(decode(4, codec, bytes.to_vec()).unwrap(), v);
    }

    #[test]
    fn small_and_incompressible_values_are_stored_as_given() {
        let small = object(1);
        assert!(small.len() < MIN_COMPRESS);
        assert!(pack(&small).is_none());
        let noise = test_support::incompressible(4096, 0x9e37_79b9_7f4a_7c15);
        assert!(pack(&noise).is_none());
        assert_eq!(stored(&noise, None), (RAW, noise.as_slice()));
        assert_eq!(decode(4, RAW, noise.clone()).unwrap(), noise);
    }

    #[test]
    fn damaged_rows_are_errors() {
        let v = object(100);
        let mut stored = pack(&v).unwrap();
        assert!(matches!(
            decode_value(7, stored.clone()),
            Err(DecodeError::Unknown(7))
        ));
        // A length beyond any value is refused before anything is allocated.
        let mut huge = stored.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_value(LZ4, huge),
            Err(DecodeError::TooLarge(_))
        ));
        // A cut-off body is an error, not a short value.
        stored.truncate(stored.len() / 2);
        assert!(decode_value(LZ4, stored).is_err());
        let err = decode(4, LZ4, vec![1, 2]).unwrap_err();
        assert!(err.to_string().contains("index: 4"), "{err}");
    }
}
