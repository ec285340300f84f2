//! The bundle file itself: a zip written entry by entry into a seekable file, each entry
//! hashed (SHA-256) and sized as it is written, so that the manifest can list them at the end
//! without reading anything back.

use std::fs::File;
use std::io::{BufWriter, Write};

use sha2::{Digest, Sha256};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::ExportError;
use super::manifest::FileEntry;

/// Writes the entries of one bundle.
pub struct BundleWriter {
    zip: ZipWriter<BufWriter<File>>,
    files: Vec<FileEntry>,
    /// The entry being written: its path, hash and size so far.
    current: Option<(String, Sha256, u64)>,
    /// Modification time stamped on every entry (the generation time), so that two exports of
    /// the same data at the same time are byte-identical.
    modified: zip::DateTime,
}

impl BundleWriter {
    pub fn new(file: File, generated_at: chrono::DateTime<chrono::Utc>) -> BundleWriter {
        use chrono::{Datelike, Timelike};
        let modified = u16::try_from(generated_at.year())
            .ok()
            .and_then(|year| {
                zip::DateTime::from_date_and_time(
                    year,
                    u8::try_from(generated_at.month()).ok()?,
                    u8::try_from(generated_at.day()).ok()?,
                    u8::try_from(generated_at.hour()).ok()?,
                    u8::try_from(generated_at.minute()).ok()?,
                    u8::try_from(generated_at.second()).ok()?,
                )
                .ok()
            })
            .unwrap_or_default();
        BundleWriter {
            zip: ZipWriter::new(BufWriter::with_capacity(256 * 1024, file)),
            files: Vec::new(),
            current: None,
            modified,
        }
    }

    /// Starts a new entry (ending the previous one).
    pub fn start(&mut self, path: &str) -> Result<(), ExportError> {
        self.end_current();
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(self.modified)
            .unix_permissions(0o644)
            .large_file(true);
        self.zip
            .start_file(path, options)
            .map_err(|e| ExportError::Zip(e.to_string()))?;
        self.current = Some((path.to_string(), Sha256::new(), 0));
        Ok(())
    }

    fn end_current(&mut self) {
        if let Some((path, hasher, size)) = self.current.take() {
            self.files.push(FileEntry {
                path,
                sha256: hex::encode(hasher.finalize()),
                size,
            });
        }
    }

    /// A whole entry at once.
    pub fn file(&mut self, path: &str, bytes: &[u8]) -> Result<(), ExportError> {
        self.start(path)?;
        self.write_all(bytes).map_err(ExportError::Io)?;
        self.end_current();
        Ok(())
    }

    /// The entries finished so far, in order.
    pub fn files(&mut self) -> &[FileEntry] {
        self.end_current();
        &self.files
    }

    /// Ends the last entry and writes the zip's central directory.
    pub fn finish(mut self) -> Result<Vec<FileEntry>, ExportError> {
        self.end_current();
        let mut out = self
            .zip
            .finish()
            .map_err(|e| ExportError::Zip(e.to_string()))?;
        out.flush().map_err(ExportError::Io)?;
        let file = out
            .into_inner()
            .map_err(|e| ExportError::Io(e.into_error()))?;
        file.sync_all().map_err(ExportError::Io)?;
        Ok(self.files)
    }
}

impl Write for BundleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.zip.write(buf)?;
        if let Some((_, hasher, size)) = &mut self.current {
            hasher.update(&buf[..n]);
            *size += n as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.zip.flush()
    }
}
