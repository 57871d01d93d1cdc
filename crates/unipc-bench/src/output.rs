//! Report files checked before the run and written whole after it.
//!
//! [`OutputFile::create`] is called before anything is measured, so a path
//! that cannot be written fails the command at once rather than after a
//! minute of measuring. A regular file is staged: the report goes to a new
//! file beside the target (`.NAME.unipc-partial-PID`) that is renamed over
//! the target once written, so a failed or interrupted run leaves neither a
//! half-written report nor the staging file (it is registered with the
//! run's clean-up, see `interrupt`). A target that exists and is not a
//! regular file (`/dev/stdout`, a FIFO) is opened at once and written
//! directly.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A report file, checked and open, not yet written.
#[derive(Debug)]
pub struct OutputFile {
    target: PathBuf,
    how: How,
}

#[derive(Debug)]
enum How {
    /// Written to `staging`, then renamed to the target.
    Staged { staging: PathBuf, file: File },
    /// Written straight into the target (a device or FIFO).
    Direct(File),
}

/// An error about one output file: the path, then what failed.
#[derive(Debug)]
pub struct OutputError {
    /// The file given.
    pub path: PathBuf,
    /// What was being done.
    pub op: &'static str,
    /// The OS error.
    pub source: io::Error,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.path.display(), self.op, self.source)
    }
}

/// The OS error is part of the message, so it is not repeated as a source.
impl std::error::Error for OutputError {}

impl OutputFile {
    /// Checks that `path` can be written and prepares to write it.
    ///
    /// # Errors
    /// When the target is a directory, cannot be opened for writing, or its
    /// directory does not admit a new file.
    pub fn create(path: &Path) -> Result<OutputFile, OutputError> {
        let fail = |op, source| OutputError {
            path: path.to_path_buf(),
            op,
            source,
        };
        crate::interrupt::install();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(fail(
                    "opening for writing",
                    io::Error::other("it is a directory"),
                ))
            }
            Ok(meta) if !meta.is_file() => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| fail("opening for writing", e))?;
                return Ok(OutputFile {
                    target: path.to_path_buf(),
                    how: How::Direct(file),
                });
            }
            // An existing file must be writable by us, though it is
            // replaced by a rename: refuse what the user could not write.
            Ok(_) => drop(
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| fail("opening for writing", e))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail("looking up", e)),
        }
        let name = path
            .file_name()
            .ok_or_else(|| fail("naming", io::Error::from(io::ErrorKind::InvalidInput)))?;
        let mut staged = std::ffi::OsString::from(".");
        staged.push(name);
        staged.push(format!(".unipc-partial-{}", std::process::id()));
        let staging = path.with_file_name(staged);
        let mut registry = crate::interrupt::registry();
        registry.file(&staging, false);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
        {
            Ok(file) => Ok(OutputFile {
                target: path.to_path_buf(),
                how: How::Staged { staging, file },
            }),
            Err(e) => {
                registry.file(&staging, true);
                Err(fail("creating", e))
            }
        }
    }

    /// The path given.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Writes `contents` as the whole file.
    ///
    /// # Errors
    /// When writing or renaming fails; a staged file is removed then.
    pub fn write(self, contents: &[u8]) -> Result<(), OutputError> {
        let fail = |op, source| OutputError {
            path: self.target.clone(),
            op,
            source,
        };
        match &self.how {
            How::Direct(file) => {
                let mut file = file;
                file.write_all(contents).map_err(|e| fail("writing", e))
            }
            How::Staged { staging, file } => {
                let mut file = file;
                let result = file
                    .write_all(contents)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| fail("writing", e))
                    .and_then(|()| {
                        std::fs::rename(staging, &self.target).map_err(|e| fail("renaming", e))
                    });
                let mut registry = crate::interrupt::registry();
                if result.is_err() {
                    let _ = std::fs::remove_file(staging);
                }
                registry.file(staging, true);
                result
            }
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // Not written (the run failed): the staging file goes. After a
        // rename it no longer exists and this does nothing.
        if let How::Staged { staging, .. } = &self.how {
            if std::fs::symlink_metadata(staging).is_ok() {
                let mut registry = crate::interrupt::registry();
                let _ = std::fs::remove_file(staging);
                registry.file(staging, true);
            }
        }
    }
}
