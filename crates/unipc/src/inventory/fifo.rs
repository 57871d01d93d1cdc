//! FIFOs under the directories given, found by walking them without
//! following symbolic links (a link to `/` cannot make the walk roam) and
//! no deeper than [`super::FIFO_DEPTH`] levels.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::procs::{note, Processes};
use super::{owner_and_mode, utf8_path, Details, Kind, Listing, Object, FIFO_DEPTH};

/// Adds the FIFOs under `dirs`, each once, with their readers and writers.
pub(super) fn fifos(listing: &mut Listing, procs: &Processes, dirs: &[std::path::PathBuf]) {
    let mut found = Vec::new();
    for dir in dirs {
        walk(listing, dir, 0, &mut found);
    }
    found.sort_by(|a: &(String, std::fs::Metadata), b| a.0.cmp(&b.0));
    // The same FIFO reached from two of the directories given is one object.
    found.dedup_by(|a, b| a.1.dev() == b.1.dev() && a.1.ino() == b.1.ino());
    for (path, meta) in found {
        let (owner, mode) = owner_and_mode(&meta);
        listing.objects.push(Object {
            kind: Kind::Fifo,
            name: format!("fifo:{path}"),
            owner,
            mode,
            details: Details::Fifo {
                holders: procs.holders_of_file(meta.dev(), meta.ino()),
            },
        });
    }
}

fn walk(
    listing: &mut Listing,
    dir: &Path,
    depth: usize,
    found: &mut Vec<(String, std::fs::Metadata)>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return note(&mut listing.unreadable, dir.to_path_buf(), &err),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // lstat: a symlink is neither followed nor taken for what it names.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_fifo() {
            if let Some(text) = utf8_path(&path, &mut listing.unreadable) {
                found.push((text, meta));
            }
        } else if kind.is_dir() && depth + 1 < FIFO_DEPTH {
            walk(listing, &path, depth + 1, found);
        }
    }
}
