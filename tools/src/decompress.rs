//! The compressions a bzImage payload can carry (Linux's `CONFIG_KERNEL_*`: gzip, bzip2, lzma,
//! xz, lzo, lz4, zstd), told apart by their magic bytes, and the compressions of kernel modules
//! (`.ko.gz`, `.ko.xz`, `.ko.zst`), all decoded by crates: flate2, bzip2 (libbz2-rs), liblzma,
//! lzo, lz4_flex, zstd.
//!
//! Each decoder reads one stream and stops at its end: a bzImage payload ends in a 4-byte size
//! word after the stream (`size_append` in Linux's `scripts/Makefile.lib`).

use anyhow::{bail, Context, Result};
use std::io::Read;

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`CONFIG_KERNEL_GZIP`, `.ko.gz`).
    Gzip,
    /// bzip2 (`CONFIG_KERNEL_BZIP2`).
    Bzip2,
    /// The legacy `.lzma` ("LZMA alone") format (`CONFIG_KERNEL_LZMA`).
    Lzma,
    /// xz (`CONFIG_KERNEL_XZ`, Debian's 6.1 kernels; `.ko.xz`, Debian's 6.12 modules).
    Xz,
    /// lzop's file format of LZO1X blocks (`CONFIG_KERNEL_LZO`).
    Lzo,
    /// LZ4's legacy frame format, as `lz4 -l` writes it (`CONFIG_KERNEL_LZ4`, Debian's cloud
    /// kernels).
    Lz4,
    /// zstd (`CONFIG_KERNEL_ZSTD`, Debian's 6.12 kernels; `.ko.zst`).
    Zstd,
}

/// lzop's magic.
const LZO_MAGIC: &[u8] = b"\x89LZO\0\r\n\x1a\n";
/// LZ4's legacy frame magic (0x184C2102, little-endian).
const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
/// A legacy LZ4 block decompresses to at most 8 MiB.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

impl Compression {
    /// Every format, in the order [`Compression::detect`] tries them.
    pub const ALL: [Compression; 7] = [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Lzma,
        Compression::Xz,
        Compression::Lzo,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The name Linux's `CONFIG_KERNEL_*` option and the tools use.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Lzma => "lzma",
            Compression::Xz => "xz",
            Compression::Lzo => "lzo",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The format `data` starts in, by its magic bytes (those Linux's `scripts/extract-vmlinux`
    /// looks for; an `.lzma` stream by its usual first properties byte `0x5d` and a dictionary
    /// size below 4 GiB).
    pub fn detect(data: &[u8]) -> Option<Compression> {
        let starts = |m: &[u8]| data.starts_with(m);
        Some(if starts(b"\x1f\x8b") {
            Compression::Gzip
        } else if starts(b"BZh") {
            Compression::Bzip2
        } else if starts(b"\xfd7zXZ\0") {
            Compression::Xz
        } else if starts(LZO_MAGIC) {
            Compression::Lzo
        } else if starts(&LZ4_LEGACY_MAGIC.to_le_bytes()) {
            Compression::Lz4
        } else if starts(b"\x28\xb5\x2f\xfd") {
            Compression::Zstd
        } else if starts(b"\x5d\0\0") {
            Compression::Lzma
        } else {
            return None;
        })
    }

    /// The format a module file's extension names (`ko.gz`, `ko.xz`, `ko.zst`).
    pub fn from_extension(ext: &str) -> Option<Compression> {
        match ext {
            "gz" => Some(Compression::Gzip),
            "xz" => Some(Compression::Xz),
            "zst" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decompresses the first stream of `data` (what follows it is ignored). `size`, when known
/// (a bzImage's size word), bounds the output and ends an LZ4 legacy frame, whose end nothing
/// else marks.
pub fn decompress(kind: Compression, data: &[u8], size: Option<usize>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size.unwrap_or(data.len() * 4));
    let read = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<()> {
        r.read_to_end(out)
            .with_context(|| format!("decompressing {kind} data"))?;
        Ok(())
    };
    match kind {
        Compression::Gzip => read(&mut flate2::bufread::GzDecoder::new(data), &mut out)?,
        Compression::Bzip2 => read(&mut bzip2::bufread::BzDecoder::new(data), &mut out)?,
        Compression::Lzma => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)?;
            read(
                &mut liblzma::bufread::XzDecoder::new_stream(data, stream),
                &mut out,
            )?
        }
        Compression::Xz => {
            // One stream (not `CONCATENATED`): the size word after it is no second stream.
            let stream = liblzma::stream::Stream::new_stream_decoder(u64::MAX, 0)?;
            read(
                &mut liblzma::bufread::XzDecoder::new_stream(data, stream),
                &mut out,
            )?
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(data)?.single_frame();
            // Linux compresses with `zstd -22 --ultra`: allow any window a frame may ask for.
            d.window_log_max(31)?;
            read(&mut d, &mut out)?
        }
        Compression::Lz4 => lz4_legacy(data, size, &mut out)?,
        Compression::Lzo => lzop(data, &mut out)?,
    }
    if let Some(n) = size {
        if out.len() != n {
            bail!(
                "the {kind} data decompressed to {} bytes, its size word says {n}",
                out.len()
            );
        }
    }
    Ok(out)
}

/// LZ4's legacy frame: the magic, then blocks of a little-endian `u32` compressed length and
/// an LZ4 block of at most 8 MiB decompressed. Nothing marks the last block: the frame ends at
/// the end of `data`, at `size` bytes of output, or at a length that runs past `data` (the
/// size word of a bzImage payload). The magic again starts another frame.
fn lz4_legacy(data: &[u8], size: Option<usize>, out: &mut Vec<u8>) -> Result<()> {
    let u32_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    if u32_at(0) != Some(LZ4_LEGACY_MAGIC) {
        bail!("not an LZ4 legacy frame");
    }
    let mut at = 4;
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    while let Some(len) = u32_at(at) {
        if size.is_some_and(|n| out.len() >= n) {
            break;
        }
        if len == LZ4_LEGACY_MAGIC {
            at += 4;
            continue;
        }
        let Some(src) = data.get(at + 4..at + 4 + len as usize) else {
            break;
        };
        let n = lz4_flex::block::decompress_into(src, &mut block)
            .map_err(|e| anyhow::anyhow!("decompressing an LZ4 block at offset {at}: {e}"))?;
        out.extend_from_slice(&block[..n]);
        at += 4 + len as usize;
    }
    Ok(())
}

/// lzop's flags (`F_*` in lzop's `conf.h`) that add fields.
const LZOP_ADLER32_D: u32 = 0x1;
const LZOP_ADLER32_C: u32 = 0x2;
const LZOP_EXTRA_FIELD: u32 = 0x40;
const LZOP_CRC32_D: u32 = 0x100;
const LZOP_CRC32_C: u32 = 0x200;
const LZOP_FILTER: u32 = 0x800;

/// An lzop file: its header (magic, versions, method, flags, mode, times, name, checksum,
/// perhaps an extra field), then blocks of a big-endian uncompressed and compressed length,
/// the checksums the flags ask for, and the data (LZO1X, or stored when both lengths are equal),
/// until an uncompressed length of 0. The checksums are skipped: the caller checks the size
/// and what the data is.
fn lzop(data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut at = 0usize;
    let mut take = move |n: usize| -> Result<&[u8]> {
        let s = data
            .get(at..at.checked_add(n).context("lzop: length overflow")?)
            .context("lzop: truncated")?;
        at += n;
        Ok(s)
    };
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if take(LZO_MAGIC.len())? != LZO_MAGIC {
        bail!("not an lzop file");
    }
    let version = be16(take(2)?);
    take(2)?; // the library version
    if version >= 0x0940 {
        take(2)?; // the version needed to extract
    }
    let method = take(1)?[0];
    if version >= 0x0940 {
        take(1)?; // the level
    }
    if !matches!(method, 1..=3) {
        bail!("lzop: method {method} is not LZO1X");
    }
    let flags = be32(take(4)?);
    if flags & LZOP_FILTER != 0 {
        take(4)?;
    }
    take(8)?; // mode, mtime (low)
    if version >= 0x0940 {
        take(4)?; // mtime (high)
    }
    let name_len = take(1)?[0] as usize;
    take(name_len + 4)?; // the name, the header's checksum
    if flags & LZOP_EXTRA_FIELD != 0 {
        let n = be32(take(4)?) as usize;
        take(n + 4)?;
    }
    loop {
        let dst_len = be32(take(4)?) as usize;
        if dst_len == 0 {
            return Ok(());
        }
        let src_len = be32(take(4)?) as usize;
        let checksums = |mask_a: u32, mask_c: u32| {
            4 * ((flags & mask_a != 0) as usize + (flags & mask_c != 0) as usize)
        };
        take(checksums(LZOP_ADLER32_D, LZOP_CRC32_D))?;
        if src_len < dst_len {
            take(checksums(LZOP_ADLER32_C, LZOP_CRC32_C))?;
        }
        let src = take(src_len)?;
        if src_len == dst_len {
            out.extend_from_slice(src);
            continue;
        }
        let start = out.len();
        out.resize(start + dst_len, 0);
        let n = lzo::decompress_into(src, &mut out[start..])
            .map_err(|e| anyhow::anyhow!("decompressing an LZO block: {e:?}"))?;
        if n != dst_len {
            bail!("lzop: a block decompressed to {n} bytes, its header says {dst_len}");
        }
    }
}

/// Test payloads: each format compressed by the same crates, in the layout Linux's build gives
/// it (xz with the x86 BCJ filter and CRC32, lzop's file format, LZ4's legacy frame).
#[cfg(test)]
pub mod testing {
    use super::*;
    use std::io::Write;

    /// `data` compressed in `kind`'s format.
    pub fn compress(kind: Compression, data: &[u8]) -> Vec<u8> {
        match kind {
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Lzma => {
                let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
                let s = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
                xz_with(s, data)
            }
            Compression::Xz => {
                let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
                let mut f = liblzma::stream::Filters::new();
                f.x86().lzma2(&opts);
                let s =
                    liblzma::stream::Stream::new_stream_encoder(&f, liblzma::stream::Check::Crc32)
                        .unwrap();
                xz_with(s, data)
            }
            Compression::Zstd => zstd::stream::encode_all(data, 19).unwrap(),
            Compression::Lz4 => {
                let mut v = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
                for chunk in data.chunks(LZ4_LEGACY_BLOCK) {
                    let b = lz4_flex::block::compress(chunk);
                    v.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    v.extend_from_slice(&b);
                }
                v
            }
            Compression::Lzo => lzop_file(data, 256 * 1024),
        }
    }

    fn xz_with(s: liblzma::stream::Stream, data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), s);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// An lzop file as `lzop -9` writes it (version 0x1040, method 3, flags ADLER32_D; the
    /// checksums zero, as the reader skips them), `block` bytes a block; a block LZO does not
    /// shrink is stored.
    pub fn lzop_file(data: &[u8], block: usize) -> Vec<u8> {
        let mut v = LZO_MAGIC.to_vec();
        v.extend_from_slice(&0x1040u16.to_be_bytes());
        v.extend_from_slice(&0x2080u16.to_be_bytes());
        v.extend_from_slice(&0x0940u16.to_be_bytes());
        v.extend_from_slice(&[3, 9]);
        v.extend_from_slice(&(LZOP_ADLER32_D | 0x0300_0000).to_be_bytes());
        v.extend_from_slice(&0o100644u32.to_be_bytes());
        v.extend_from_slice(&[0; 8]); // mtime
        v.push(4);
        v.extend_from_slice(b"name");
        v.extend_from_slice(&[0; 4]); // header checksum
        for chunk in data.chunks(block) {
            let c = lzokay_native::compress(chunk).unwrap();
            v.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            let stored = c.len() >= chunk.len();
            let body = if stored { chunk } else { &c[..] };
            v.extend_from_slice(&(body.len() as u32).to_be_bytes());
            v.extend_from_slice(&[0; 4]); // adler32 of the data
            v.extend_from_slice(body);
        }
        v.extend_from_slice(&0u32.to_be_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    /// Some data every format shrinks, with a stretch none does.
    fn sample() -> Vec<u8> {
        let mut v: Vec<u8> = (0..40_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut x = 0x1234_5678u32;
        v.extend((0..5000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        v
    }

    #[test]
    fn every_format_round_trips_and_is_detected() {
        let data = sample();
        for kind in Compression::ALL {
            let c = compress(kind, &data);
            assert_eq!(Compression::detect(&c), Some(kind), "{kind}");
            // With a size word after the stream, as in a bzImage payload.
            let mut payload = c.clone();
            payload.extend_from_slice(&(data.len() as u32).to_le_bytes());
            let out = decompress(kind, &payload, Some(data.len()))
                .unwrap_or_else(|e| panic!("{kind}: {e:#}"));
            assert!(out == data, "{kind}: wrong output");
            // Without a size.
            assert!(decompress(kind, &c, None).unwrap() == data, "{kind}");
            // A wrong size is an error.
            let e = decompress(kind, &payload, Some(data.len() + 1)).unwrap_err();
            assert!(format!("{e:#}").contains("size word"), "{kind}: {e:#}");
        }
        assert_eq!(Compression::detect(b"\x7fELF"), None);
        assert_eq!(Compression::detect(b""), None);
    }

    #[test]
    fn corrupt_streams_fail() {
        let data = sample();
        for kind in Compression::ALL {
            let c = compress(kind, &data);
            let cut = &c[..c.len() / 2];
            assert!(
                decompress(kind, cut, Some(data.len())).is_err(),
                "{kind}: half a stream"
            );
        }
    }

    #[test]
    fn lz4_legacy_spans_blocks_and_frames() {
        // More than one 8 MiB block, and a second frame after the first.
        let data: Vec<u8> = (0..(9 << 20) as u32).map(|i| (i / 7) as u8).collect();
        let mut c = compress(Compression::Lz4, &data);
        c.extend_from_slice(&compress(Compression::Lz4, b"tail"));
        let out = decompress(Compression::Lz4, &c, Some(data.len() + 4)).unwrap();
        assert_eq!(out.len(), data.len() + 4);
        assert!(out[..data.len()] == data[..]);
        assert_eq!(&out[data.len()..], b"tail");
    }

    #[test]
    fn lzop_stores_what_lzo_cannot_shrink() {
        let data = sample();
        // Small blocks: the random stretch falls in blocks stored as they are.
        let c = lzop_file(&data, 1024);
        assert_eq!(decompress(Compression::Lzo, &c, None).unwrap(), data);
        assert!(decompress(Compression::Lzo, b"\x89LZO\0\r\n\x1a\n\x10", None).is_err());
    }

    #[test]
    fn module_extensions() {
        assert_eq!(Compression::from_extension("xz"), Some(Compression::Xz));
        assert_eq!(Compression::from_extension("zst"), Some(Compression::Zstd));
        assert_eq!(Compression::from_extension("gz"), Some(Compression::Gzip));
        assert_eq!(Compression::from_extension("ko"), None);
    }
}
