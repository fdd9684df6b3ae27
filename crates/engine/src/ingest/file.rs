//! One file: read (through `sources`), sniffed, its records through the shared reader, its
//! damage and counts recorded.

use std::path::Path;

use keyward_model::{Diagnostic, time::Millis};
use keyward_normalize::{Format, Layout};
use keyward_sources::Input;
use keyward_store::Batch;

use super::sink::{EngineSink, Parts};
use super::{
    FileReport, FileStatus, IngestOptions, IngestReport, Progress, Run, dead_letter, read_records,
};
use crate::EngineError;

/// The largest decompression buffer kept from one file to the next.
const SPARE_MAX: usize = 256 * 1024 * 1024;

/// A file to ingest; `explicit`: named on the command line (not found in a directory), so
/// an unrecognised format is an error.
pub(super) struct File<'a> {
    pub path: &'a Path,
    pub explicit: bool,
}

/// Ingests one file into the open batch.
pub(super) fn ingest(
    parts: Parts,
    file: File,
    opts: &IngestOptions,
    progress: &mut dyn Progress,
    now: Millis,
    run: &mut Run,
) -> Result<FileReport, EngineError> {
    let shown = file.path.display().to_string();
    let batch = parts.batch;
    // A file that cannot be read is one dead letter; the run goes on with the others.
    let (hash, mut input) = match keyward_sources::read_file(file.path) {
        Ok(o) => o,
        Err(e) => return unreadable(batch, &mut run.state.report, &shown, &e, now),
    };
    let mut fr = FileReport {
        path: shown.clone(),
        format: None,
        status: FileStatus::Ingested,
        records: 0,
        accepted: 0,
        rejected: 0,
    };
    if !opts.force
        && let Some(prev) = batch.file_by_hash(&hash)?
    {
        fr.format = Format::parse(&prev.format);
        fr.status = FileStatus::Unchanged;
        return Ok(fr);
    }
    // Where the bytes stopped making sense, if they did: what came before is ingested.
    let mut damage = input.decompress(std::mem::take(&mut run.spare));
    let (layout, format) = sniff(&mut input, &shown, opts.format, &mut damage)?;
    fr.format = format;
    let Some(format) = format else {
        fr.status = FileStatus::Unrecognized;
        if file.explicit {
            unrecognized(
                batch,
                &mut run.state.report,
                &shown,
                &hash,
                &input,
                now,
                &mut fr,
            )?;
        }
        return Ok(fr);
    };
    let (cluster, origin) =
        crate::clusters::name_for(Some(file.path), opts.cluster.as_deref(), &run.aliases);
    if matches!(format, Format::K8sAudit | Format::K8sSnapshot) {
        super::note_cluster(&mut run.state.report, &cluster, origin);
    }
    run.ctx.cluster = cluster;
    run.ctx.path = Some(shown.clone());
    let file_id = batch.add_file(&shown, &hash, format.as_str(), now)?;
    let parts = Parts { batch, ..parts };
    let source = (file_id, shown.as_str(), format.as_str());
    let mut sink = EngineSink::new(parts, &mut run.state, source, progress);
    sink.cluster.clone_from(&run.ctx.cluster);
    let (lines_seen, cut) = read_records(format, layout, &mut input, &mut run.ctx, &mut sink);
    damage = damage.or(cut);
    if let Some(e) = sink.error.take() {
        return Err(e);
    }
    let counts = Counts {
        records: sink.records,
        accepted: sink.accepted,
        rejected: sink.rejected,
        events_new: sink.events_new,
    };
    drop(sink);
    progress.records(counts.records % 4096);
    // Where a damage is reported: after the lines read whole (a document's are counted
    // only then — a pass over the whole document, so only when there is a damage).
    let damage = damage.map(|e| {
        let doc = match &input {
            Input::Memory(m) if layout == Layout::Document => m.as_slice(),
            _ => &[],
        };
        let lines =
            lines_seen.unwrap_or_else(|| doc.iter().filter(|&&b| b == b'\n').count() as u64);
        (e, lines)
    });
    let at = Place {
        batch,
        file_id,
        shown: &shown,
        format,
    };
    finish(at, counts, damage, &mut run.state.report, &mut fr)?;
    // The decompressed bytes' buffer serves the next file.
    if let Input::Memory(m) = input
        && m.capacity() <= SPARE_MAX
    {
        run.spare = m;
    }
    Ok(fr)
}

/// The layout and format of a file (`None`: not a format Keyward reads). A document is
/// read whole into memory here; a read error doing so is the file's damage.
fn sniff(
    input: &mut Input,
    shown: &str,
    forced: Option<Format>,
    damage: &mut Option<std::io::Error>,
) -> Result<(Layout, Option<Format>), EngineError> {
    let io = |source| EngineError::Io {
        path: shown.to_owned(),
        source,
    };
    let layout = match forced {
        // A forced format that is not line-oriented is read as a document.
        Some(f) if !f.line_oriented() => Layout::Document,
        _ => keyward_normalize::sniff::layout(input.head().map_err(io)?, shown),
    };
    if layout == Layout::Document
        && let Some(e) = input.read_whole()
    {
        *damage = Some(e);
    }
    let format = match (forced, layout, &*input) {
        (Some(f), _, _) => Some(f),
        (None, Layout::Lines, _) => {
            let h = keyward_normalize::sniff::trim_start(input.head().map_err(io)?);
            let nl = h.iter().position(|&b| b == b'\n').unwrap_or(h.len());
            keyward_normalize::sniff::format_of_object(h.get(..nl).unwrap_or_default())
        }
        (None, Layout::Document, Input::Memory(doc)) => {
            keyward_normalize::sniff::format_of_document(doc, shown)
        }
        (None, Layout::Document, _) => None,
    };
    Ok((layout, format))
}

/// An explicitly named file of no known format: one dead letter saying why.
fn unrecognized(
    batch: &mut dyn Batch,
    report: &mut IngestReport,
    shown: &str,
    hash: &str,
    input: &Input,
    now: Millis,
    fr: &mut FileReport,
) -> Result<(), EngineError> {
    let file_id = batch.add_file(shown, hash, "unknown", now)?;
    let doc = match input {
        Input::Memory(m) => m.as_slice(),
        _ => &[],
    };
    // Nested too deep to be sniffed: that is why, not the format.
    let class = match keyward_normalize::depth::too_deep_at(doc) {
        Some(_) => keyward_normalize::TOO_DEEP,
        None => "not a recognised input format",
    };
    let reason = match class {
        keyward_normalize::TOO_DEEP => class.to_owned(),
        _ => "not a recognised input format (use `--format` to force one)".to_owned(),
    };
    let diag = Diagnostic {
        line: 1,
        record: None,
        reason: reason.into(),
    };
    dead_letter(
        batch,
        report,
        file_id,
        shown,
        format!("unknown: {class}"),
        diag,
    )?;
    batch.finish_file(file_id, 1, 0, 1)?;
    report.unrecognized_explicit += 1;
    report.rejected += 1;
    fr.records = 1;
    fr.rejected = 1;
    Ok(())
}

/// What a file's sink counted.
struct Counts {
    records: u64,
    accepted: u64,
    rejected: u64,
    events_new: u64,
}

/// The file row a file's outcome is recorded under.
struct Place<'a, 'b> {
    batch: &'a mut (dyn Batch + 'b),
    file_id: i64,
    shown: &'a str,
    format: Format,
}

/// Records a file's outcome: its damage (one dead letter on the line after the last of
/// `lines` read whole), its counts in its file row and in the report.
fn finish(
    at: Place,
    mut c: Counts,
    damage: Option<(std::io::Error, u64)>,
    report: &mut IngestReport,
    fr: &mut FileReport,
) -> Result<(), EngineError> {
    if let Some((e, lines)) = damage {
        let diag = Diagnostic {
            line: lines + 1,
            record: None,
            reason: format!(
                "the file is damaged here ({e}); the records before the damage were kept"
            )
            .into(),
        };
        let class = format!("{}: the file is damaged", at.format.as_str());
        dead_letter(at.batch, report, at.file_id, at.shown, class, diag)?;
        c.records += 1;
        c.rejected += 1;
        fr.status = FileStatus::Damaged;
    }
    at.batch
        .finish_file(at.file_id, c.records, c.accepted, c.rejected)?;
    let st = report.per_source.entry(at.format.as_str()).or_default();
    st.files += 1;
    st.records += c.records;
    st.accepted += c.accepted;
    st.rejected += c.rejected;
    st.events_new += c.events_new;
    report.rejected += c.rejected;
    fr.records = c.records;
    fr.accepted = c.accepted;
    fr.rejected = c.rejected;
    Ok(())
}

/// A file that could not be read: one dead letter with the reason, under a file row of its
/// own (its bytes are unknown, so the row's hash is of its path and the time: a later run
/// tries it again).
fn unreadable(
    batch: &mut dyn Batch,
    report: &mut IngestReport,
    shown: &str,
    e: &std::io::Error,
    now: Millis,
) -> Result<FileReport, EngineError> {
    let mut h = blake3::Hasher::new();
    h.update(b"unreadable\0");
    h.update(shown.as_bytes());
    h.update(&now.to_le_bytes());
    let file_id = batch.add_file(shown, h.finalize().to_hex().as_str(), "unknown", now)?;
    let diag = Diagnostic {
        line: 1,
        record: None,
        reason: format!("the file cannot be read: {e}").into(),
    };
    let class = "unknown: the file cannot be read".to_owned();
    dead_letter(batch, report, file_id, shown, class, diag)?;
    batch.finish_file(file_id, 1, 0, 1)?;
    report.rejected += 1;
    Ok(FileReport {
        path: shown.to_owned(),
        format: None,
        status: FileStatus::Unreadable,
        records: 1,
        accepted: 0,
        rejected: 1,
    })
}
