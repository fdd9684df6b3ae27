//! Where records come from: files and directory trees (including S3-layout
//! `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/` trees), plain or gzip-compressed.
//! Reading only — interpreting bytes is `normalize`'s job.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Buffer size for readers: large enough that format sniffing sees a whole first line of
/// typical JSON-lines input.
pub const BUFFER: usize = 256 * 1024;

/// Expands the given paths into the files to read, in a stable order: files as given,
/// directories walked recursively in byte order of their entries. Hidden entries
/// (`.name`) inside directories are skipped.
pub fn discover(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| io::Error::new(e.kind(), format!("`{}`: {e}", p.display())))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("`{}`: {e}", dir.display())))?
        .collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ty = e.file_type()?;
        let path = e.path();
        if ty.is_dir() {
            walk(&path, out)?;
        } else if ty.is_file() || (ty.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// A gzip file may expand to this many times its size (JSON logs compress 10 to 30-fold)…
pub const MAX_RATIO: u64 = 200;
/// …or to this much whatever its ratio (tiny files compress oddly).
pub const RATIO_FLOOR: u64 = 1 << 20;
/// The most a file read whole into memory may expand to.
pub const MAX_IN_MEMORY: u64 = 1 << 30;
/// The longest line of a streamed JSON-lines file: a longer one is one rejected record.
pub const MAX_LINE: usize = 64 << 20;

/// How far a gzip file of `compressed` bytes may expand: [`MAX_RATIO`] times, at least
/// [`RATIO_FLOOR`]. A decompression bomb stops there, having cost no more.
pub fn expansion_limit(compressed: u64) -> u64 {
    compressed.saturating_mul(MAX_RATIO).max(RATIO_FLOOR)
}

/// The error a decompression that passed its limit ends with.
fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the gzip content expands past {limit} bytes (a decompression bomb?)"),
    )
}

/// Opens a file for reading, transparently decompressing gzip (detected from the magic
/// bytes, not the name; concatenated gzip members are read through), within
/// [`expansion_limit`] of the file's size.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    wrap(file, expansion_limit(size))
}

/// Wraps any byte source (a file, a request body, standard input) with buffering and
/// transparent gzip decompression of at most `limit` bytes: reading past it is an error.
pub fn wrap<R: Read + 'static>(r: R, limit: u64) -> io::Result<Box<dyn BufRead>> {
    let mut b = BufReader::with_capacity(BUFFER, r);
    if b.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        let gz = Bounded {
            inner: flate2::bufread::MultiGzDecoder::new(b),
            left: limit,
            limit,
        };
        Ok(Box::new(BufReader::with_capacity(BUFFER, gz)))
    } else {
        Ok(Box::new(b))
    }
}

/// A reader that fails once it has given `limit` bytes and there are more.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // At the limit: one more byte means the content goes past it.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(too_large(self.limit)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// What [`read_line_bounded`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line (its newline included when there was one) is in the buffer.
    Read,
    /// A line longer than the limit: the buffer holds its first `max` bytes; the rest up to
    /// its newline was skipped.
    TooLong,
    /// Nothing left.
    End,
}

/// `read_until(b'\n')` that never holds more than `max` bytes of one line: a file with no
/// newlines (or a bomb of them) cannot take all memory.
pub fn read_line_bounded(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    let mut skipping = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (any, skipping) {
                (false, _) => Line::End,
                (true, true) => Line::TooLong,
                (true, false) => Line::Read,
            });
        }
        any = true;
        let (upto, done) = match chunk.iter().position(|&c| c == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !skipping {
            let room = max.saturating_sub(buf.len());
            if upto > room {
                buf.extend_from_slice(chunk.get(..room).unwrap_or_default());
                skipping = true;
            } else {
                buf.extend_from_slice(chunk.get(..upto).unwrap_or_default());
            }
        }
        r.consume(upto);
        if done {
            return Ok(if skipping { Line::TooLong } else { Line::Read });
        }
    }
}

/// Files up to this size are read into memory whole (every S3 object is).
pub const IN_MEMORY_MAX: u64 = 64 * 1024 * 1024;

/// An input file's bytes: read whole (then decompressed), or streamed.
pub enum Input {
    /// Read whole, as stored (gzip or not); [`Input::decompress`] makes it `Memory`.
    Raw(Vec<u8>),
    /// Read whole and decompressed.
    Memory(Vec<u8>),
    /// Larger than [`IN_MEMORY_MAX`]: read as it goes, gzip decompressed within
    /// [`expansion_limit`].
    Stream(Box<dyn BufRead>),
}

impl Input {
    /// The first bytes, for format sniffing.
    pub fn head(&mut self) -> io::Result<&[u8]> {
        match self {
            Input::Raw(b) | Input::Memory(b) => Ok(b.get(..BUFFER).unwrap_or(b)),
            Input::Stream(r) => peek(&mut **r),
        }
    }

    /// Reads a streamed input to its end, into memory (a document must be parsed whole);
    /// returns the read error that cut it short, if one did: what came before is kept.
    pub fn read_whole(&mut self) -> Option<io::Error> {
        let Input::Stream(r) = self else {
            return None;
        };
        let mut bytes = Vec::new();
        let damage = r.read_to_end(&mut bytes).err();
        *self = Input::Memory(bytes);
        damage
    }

    /// Decompresses a file read whole, into `spare` (a buffer kept from file to file, see
    /// [`decompress_into`]), within [`expansion_limit`] and [`MAX_IN_MEMORY`]. Returns the
    /// damage that stopped it, if any: what came before it is kept.
    pub fn decompress(&mut self, spare: Vec<u8>) -> Option<io::Error> {
        let Input::Raw(raw) = self else {
            return None;
        };
        let raw = std::mem::take(raw);
        let limit = expansion_limit(raw.len() as u64).min(MAX_IN_MEMORY);
        let (bytes, damage) = decompress_partial(raw, spare, limit);
        *self = Input::Memory(bytes);
        damage
    }
}

/// Reads a file for ingestion: its BLAKE3 hash (hex; the same bytes are ingested once) and
/// its bytes, whole up to [`IN_MEMORY_MAX`] (read once: hashed, then decompressed and
/// parsed from memory), streamed beyond.
pub fn read_file(path: &Path) -> io::Result<(String, Input)> {
    if std::fs::metadata(path)?.len() <= IN_MEMORY_MAX {
        let raw = std::fs::read(path)?;
        let hash = blake3::hash(&raw).to_hex().to_string();
        Ok((hash, Input::Raw(raw)))
    } else {
        let mut h = blake3::Hasher::new();
        h.update_reader(File::open(path)?)?;
        Ok((
            h.finalize().to_hex().to_string(),
            Input::Stream(open(path)?),
        ))
    }
}

/// Fills the reader's buffer as far as it goes without consuming, for format sniffing.
pub fn peek(r: &mut dyn BufRead) -> io::Result<&[u8]> {
    r.fill_buf()
}

/// Folder names that say what a file is, never which cluster it is of: `k8s/audit/a.log`
/// is an audit log of a cluster the path does not name.
pub const GENERIC_FOLDERS: &[&str] = &[
    "audit",
    "audits",
    "audit-logs",
    "auditlogs",
    "log",
    "logs",
    "snapshot",
    "snapshots",
    "rbac",
    "data",
    "export",
    "exports",
    "raw",
    "json",
    "jsonl",
    "default",
    "k8s",
    "kubernetes",
    "clusters",
    "cluster",
    "tmp",
    "backup",
    "backups",
    "dump",
    "dumps",
    "input",
    "inputs",
    "output",
    "outputs",
    "latest",
    "current",
    "archive",
];

/// Whether `name` is a generic folder name ([`GENERIC_FOLDERS`]), never a cluster's name.
pub fn is_generic_folder(name: &str) -> bool {
    GENERIC_FOLDERS.iter().any(|g| g.eq_ignore_ascii_case(name))
}

/// The Kubernetes cluster a file belongs to, from its path: a `cluster=<name>` component, or
/// the directory right after a `clusters/` or `k8s/` component
/// (`…/k8s/prod-eks/audit.jsonl` → `prod-eks`). A generic folder name
/// ([`GENERIC_FOLDERS`]: `audit`, `logs`, `snapshots`…) is never a cluster's name:
/// `k8s/audit/audit.log` names no cluster (`None`).
pub fn cluster_from_path(path: &Path) -> Option<String> {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(c) = parts
        .iter()
        .filter_map(|p| p.strip_prefix("cluster="))
        .find(|c| !c.is_empty() && !is_generic_folder(c))
    {
        return Some(c.to_owned());
    }
    let dirs = parts
        .get(..parts.len().saturating_sub(1))
        .unwrap_or_default();
    dirs.windows(2)
        .rev()
        .filter(|w| matches!(w.first().map(String::as_str), Some("clusters" | "k8s")))
        .filter_map(|w| w.get(1))
        .find(|c| !is_generic_folder(c))
        .cloned()
}

/// Decompresses gzip bytes (returned as they are when not gzip). The output buffer is sized
/// from the gzip trailer (`ISIZE`, the uncompressed size modulo 2³²) so it is not regrown.
pub fn decompress(raw: Vec<u8>) -> io::Result<Vec<u8>> {
    decompress_into(raw, Vec::new())
}

/// Bytes decompressed per read (see [`decompress_into`]).
/// Each read also copies the last 32 KiB of its output into inflate's window: a chunk
/// much larger than that keeps this small, and small enough to stay in a core's cache.
const READ_CHUNK: usize = 256 * 1024;

/// [`decompress`] into `out`, a buffer kept from file to file: its memory is then not
/// faulted in and zeroed by the kernel again for every file (what `out` held is dropped).
/// The bytes `out` already holds are read over as they are; only what it must add is
/// zeroed (`read_to_end` would zero the whole spare capacity of every file first).
pub fn decompress_into(raw: Vec<u8>, out: Vec<u8>) -> io::Result<Vec<u8>> {
    let limit = expansion_limit(raw.len() as u64).min(MAX_IN_MEMORY);
    let (bytes, damage) = decompress_partial(raw, out, limit);
    match damage {
        Some(e) => Err(e),
        None => Ok(bytes),
    }
}

/// [`decompress_into`] that keeps what a damaged file (truncated, a bad checksum, trailing
/// garbage after its last member) yielded before the damage: the bytes decompressed, and
/// the error that stopped it, if any. It stops at `limit` bytes (an error too, with the
/// bytes before it: a decompression bomb costs no more than the limit).
pub fn decompress_partial(
    raw: Vec<u8>,
    mut out: Vec<u8>,
    limit: u64,
) -> (Vec<u8>, Option<io::Error>) {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return (raw, None);
    }
    let limit_bytes = usize::try_from(limit).unwrap_or(usize::MAX);
    let hint = claimed_size(&raw);
    // A hint is only a hint (multi-member files, sizes over 4 GiB): cap what it reserves.
    // One byte more than the hint lets the last read see the end.
    let want = hint
        .min(raw.len().saturating_mul(64))
        .min(limit_bytes)
        .min(1 << 30)
        + 1;
    if out.len() < want {
        out.resize(want, 0);
    }
    let mut decoder = flate2::bufread::MultiGzDecoder::new(&raw[..]);
    let mut filled = 0;
    loop {
        if filled > limit_bytes {
            out.truncate(limit_bytes);
            return (out, Some(too_large(limit)));
        }
        if filled >= out.len() {
            let grown = out
                .len()
                .saturating_mul(2)
                .max(64 * 1024)
                .min(limit_bytes.saturating_add(1));
            out.resize(grown, 0);
        }
        // A read at a time: the checksum gzip computes over what a read returned then reads
        // it while it is still in cache.
        let upto = filled.saturating_add(READ_CHUNK).min(out.len());
        let Some(free) = out.get_mut(filled..upto) else {
            break;
        };
        match decoder.read(free) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.truncate(filled);
                return (out, Some(e));
            }
        }
    }
    out.truncate(filled);
    (out, None)
}

/// The size a gzip's trailer claims (ISIZE: its last member's size modulo 2³²). Only a
/// claim: a damaged or hostile file may lie.
fn claimed_size(gz: &[u8]) -> usize {
    gz.len()
        .checked_sub(4)
        .and_then(|at| gz.get(at..))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize)
}

/// Why [`gunzip_bounded`] gave up.
#[derive(Debug)]
pub enum Gunzip {
    /// The content expands past the limit.
    TooLarge,
    /// Not gzip, or damaged.
    Damaged(io::Error),
}

/// Gunzips a request body (all members) into at most `max` bytes, a 64 KiB chunk at a time.
///
/// The trailer's claimed size is only a claim: when it already says more than `max`,
/// nothing is inflated. Otherwise the buffer reserves `max` at once — address space, not
/// memory: only the pages written become resident — so it is never moved while it grows;
/// growing by steps would leave every smaller buffer behind in the allocator, costing two
/// or three times the output while a bomb is caught.
pub fn gunzip_bounded(body: &[u8], max: usize) -> Result<Vec<u8>, Gunzip> {
    if claimed_size(body) > max {
        return Err(Gunzip::TooLarge);
    }
    let mut out = Vec::with_capacity(max.saturating_add(1));
    let mut decoder = flate2::read::MultiGzDecoder::new(body);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                if out.len().saturating_add(n) > max {
                    return Err(Gunzip::TooLarge);
                }
                out.extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Gunzip::Damaged(e)),
        }
    }
}

/// Limits on a request body's decompression.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// The largest decompressed body.
    pub max_decompressed: usize,
    /// The largest expansion (decompressed / compressed size); a body under
    /// [`RATIO_FLOOR`] may expand to that much whatever its ratio.
    pub max_ratio: usize,
}

/// Why a request body cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("Content-Encoding `{0}` is not supported (gzip is)")]
    UnsupportedEncoding(String),
    #[error(
        "the gzip body expands past {max} bytes (limits: {} bytes decompressed, {}-fold expansion)",
        limits.max_decompressed,
        limits.max_ratio
    )]
    TooLarge { max: usize, limits: BodyLimits },
    #[error("the gzip body does not decompress: {0}")]
    Damaged(io::Error),
}

/// A request body's bytes: gunzipped when its `Content-Encoding` says gzip (or `x-gzip`),
/// or when it says nothing or `identity` and starts with gzip's magic bytes; within
/// `limits` ([`gunzip_bounded`]: a gzip bomb costs at most the limit).
pub fn request_body(
    content_encoding: Option<&str>,
    body: &[u8],
    limits: BodyLimits,
) -> Result<Vec<u8>, BodyError> {
    let declared = content_encoding.map(|v| v.trim().to_ascii_lowercase());
    let gzip = match declared.as_deref() {
        None | Some("identity") => body.starts_with(&[0x1f, 0x8b]),
        Some("gzip" | "x-gzip") => true,
        Some(other) => return Err(BodyError::UnsupportedEncoding(other.to_owned())),
    };
    if !gzip {
        return Ok(body.to_vec());
    }
    let max = body
        .len()
        .saturating_mul(limits.max_ratio)
        .max(RATIO_FLOOR as usize)
        .min(limits.max_decompressed);
    gunzip_bounded(body, max).map_err(|e| match e {
        Gunzip::TooLarge => BodyError::TooLarge { max, limits },
        Gunzip::Damaged(e) => BodyError::Damaged(e),
    })
}

/// Reads everything left in a reader.
pub fn read_all(r: &mut dyn BufRead) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn request_bodies_are_decoded_by_their_encoding_within_limits() {
        let limits = BodyLimits {
            max_decompressed: 4 << 20,
            max_ratio: 200,
        };
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let text = b"{\"a\":1}\n".repeat(1000);
        let packed = gz(&text);
        for encoding in [None, Some("identity"), Some(" GZIP "), Some("x-gzip")] {
            assert_eq!(
                request_body(encoding, &packed, limits).unwrap(),
                text,
                "{encoding:?}"
            );
        }
        assert_eq!(request_body(None, &text, limits).unwrap(), text);
        let e = request_body(Some("br"), &packed, limits).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Content-Encoding `br` is not supported (gzip is)"
        );
        // 8 MiB of zeros packs to a few KiB: past 4 MiB decompressed.
        let bomb = gz(&vec![0u8; 8 << 20]);
        assert!(matches!(
            request_body(Some("gzip"), &bomb, limits),
            Err(BodyError::TooLarge { .. })
        ));
        // Damaged inside, its trailer intact: the inflater or the CRC says so.
        let mut bad = packed.clone();
        for b in bad.iter_mut().skip(12).take(8) {
            *b ^= 0x5a;
        }
        assert!(matches!(
            request_body(Some("gzip"), &bad, limits),
            Err(BodyError::Damaged(_))
        ));
    }

    #[test]
    fn cluster_layouts() {
        assert_eq!(
            cluster_from_path(Path::new("x/k8s/prod-eks/audit.jsonl")).as_deref(),
            Some("prod-eks")
        );
        assert_eq!(
            cluster_from_path(Path::new("/a/clusters/dev/rbac.json")).as_deref(),
            Some("dev")
        );
        assert_eq!(
            cluster_from_path(Path::new("logs/cluster=stage/a.log")).as_deref(),
            Some("stage")
        );
        assert_eq!(cluster_from_path(Path::new("logs/a.log")), None);
        assert_eq!(cluster_from_path(Path::new("k8s/a.log")), None);
    }

    /// Regression: `k8s/audit/audit.log` was filed under a cluster named `audit`, and the
    /// snapshot beside it (`k8s/rbac.json`) under `default`: one cluster became two.
    #[test]
    fn a_generic_folder_is_never_a_cluster() {
        for p in [
            "k8s/audit/audit.log",
            "k8s/logs/a.jsonl",
            "k8s/snapshots/rbac.json",
            "est/clusters/Audit/x.json",
            "k8s/default/rbac.json",
            "logs/cluster=audit/a.log",
            "k8s/rbac.json",
        ] {
            assert_eq!(cluster_from_path(Path::new(p)), None, "{p}");
        }
        // The name is the nearest non-generic folder after `k8s/`, wherever it is.
        assert_eq!(
            cluster_from_path(Path::new("k8s/prod/audit/a.log")).as_deref(),
            Some("prod")
        );
        assert_eq!(
            cluster_from_path(Path::new("est/k8s/prod-eks/snapshots/rbac.json")).as_deref(),
            Some("prod-eks")
        );
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn decompress_into_a_kept_buffer() {
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let small = b"{\"Records\":[]}".to_vec();
        // A buffer that held a larger file: only the new file's bytes come back.
        let out = decompress_into(gz(&big), Vec::new()).unwrap();
        assert_eq!(out, big);
        let out = decompress_into(gz(&small), out).unwrap();
        assert_eq!(out, small);
        // Grows past a hint that lies (the trailer of the first member of two).
        let mut two = gz(&small);
        two.extend(gz(&big));
        let out = decompress_into(two, out).unwrap();
        assert_eq!(out.len(), small.len() + big.len());
        assert!(out.starts_with(&small) && out.ends_with(&big));
        // A damaged trailer (ISIZE 0) is read past, then reported: flate2 checks it.
        let mut lying = gz(&big);
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&[0, 0, 0, 0]);
        assert!(decompress_into(lying, Vec::new()).is_err());
        // Truncated input is an error too.
        let mut cut = gz(&big);
        cut.truncate(cut.len() / 2);
        assert!(decompress_into(cut, Vec::new()).is_err());
    }

    #[test]
    fn a_damaged_gzip_keeps_what_came_before_the_damage() {
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        // Truncated (an interrupted download): a prefix of the content, and the error.
        let mut cut = gz(&big);
        cut.truncate(cut.len() / 2);
        let (got, damage) = decompress_partial(cut, Vec::new(), u64::MAX);
        assert!(damage.is_some());
        assert!(!got.is_empty() && big.starts_with(&got), "{}", got.len());
        // Trailing garbage after a whole member: all of the member, and the error.
        let mut tail = gz(&big);
        tail.extend_from_slice(b"garbage that is not a gzip member");
        let (got, damage) = decompress_partial(tail, Vec::new(), u64::MAX);
        assert!(damage.is_some());
        assert_eq!(got, big);
        // A bad checksum: the content, and the error.
        let mut crc = gz(&big);
        let n = crc.len();
        crc[n - 8] ^= 0xff;
        let (got, damage) = decompress_partial(crc, Vec::new(), u64::MAX);
        assert!(damage.is_some());
        assert_eq!(got.len(), big.len());
    }

    #[test]
    fn a_gzip_bomb_stops_at_its_limit() {
        let zeros = vec![0u8; 16 << 20];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&zeros).unwrap();
        let bomb = enc.finish().unwrap();
        let limit = expansion_limit(bomb.len() as u64);
        assert!(limit < zeros.len() as u64, "{limit}");
        // Read whole: the bytes up to the limit, and the error.
        let (got, damage) = decompress_partial(bomb.clone(), Vec::new(), limit);
        assert_eq!(got.len() as u64, limit);
        assert!(damage.unwrap().to_string().contains("expands past"));
        assert!(decompress_into(bomb.clone(), Vec::new()).is_err());
        // Streamed: an error after the limit.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.gz");
        std::fs::write(&p, &bomb).unwrap();
        let mut r = open(&p).unwrap();
        let mut sink = Vec::new();
        let e = r.read_to_end(&mut sink).unwrap_err();
        assert!(e.to_string().contains("expands past"), "{e}");
        assert_eq!(sink.len() as u64, limit);
        // An honest file is read whole.
        let honest = gz(&b"{\"a\":1}\n".repeat(1000));
        std::fs::write(&p, &honest).unwrap();
        assert_eq!(read_all(&mut *open(&p).unwrap()).unwrap().len(), 8000);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_cut_and_skipped() {
        let text = format!("short\n{}\nlast", "x".repeat(100));
        let mut r = std::io::BufReader::with_capacity(7, text.as_bytes());
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        loop {
            buf.clear();
            match read_line_bounded(&mut r, &mut buf, 10).unwrap() {
                Line::End => break,
                l => lines.push((l, String::from_utf8_lossy(&buf).into_owned())),
            }
        }
        assert_eq!(
            lines,
            vec![
                (Line::Read, "short\n".to_owned()),
                (Line::TooLong, "x".repeat(10)),
                (Line::Read, "last".to_owned()),
            ]
        );
    }

    #[test]
    fn gzip_by_magic_and_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("b").join("x.dat");
        std::fs::create_dir_all(gz.parent().unwrap()).unwrap();
        std::fs::write(&gz, self::gz(b"hello")).unwrap();
        std::fs::write(dir.path().join("a.json"), b"{}").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"{}").unwrap();
        let files = discover(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files, vec![dir.path().join("a.json"), gz.clone()]);
        assert_eq!(read_all(&mut *open(&gz).unwrap()).unwrap(), b"hello");
        assert_eq!(decompress(std::fs::read(&gz).unwrap()).unwrap(), b"hello");
        assert_eq!(decompress(b"{}".to_vec()).unwrap(), b"{}");
    }
}
