//! Comments and positions of a file's elements, from its `SourceCodeInfo`.

use std::collections::HashMap;
use std::path::PathBuf;

use prost_reflect::FileDescriptor;

use crate::error::Location;

/// Comments and positions of a file's elements, by source path.
pub(super) struct SourceInfo {
    leading: HashMap<Vec<i32>, String>,
    trailing: HashMap<Vec<i32>, String>,
    spans: HashMap<Vec<i32>, Vec<i32>>,
}

impl SourceInfo {
    pub(super) fn of(file: &FileDescriptor) -> Self {
        let info = file.file_descriptor_proto().source_code_info.clone().unwrap_or_default();
        let mut out = SourceInfo { leading: HashMap::new(), trailing: HashMap::new(), spans: HashMap::new() };
        for l in info.location {
            if let Some(c) = l.leading_comments {
                out.leading.insert(l.path.clone(), c);
            }
            if let Some(c) = l.trailing_comments {
                out.trailing.insert(l.path.clone(), c);
            }
            out.spans.entry(l.path).or_insert(l.span);
        }
        out
    }

    /// Where the element at `path` starts (1-based), or the file's start.
    pub(super) fn location(&self, file: &str, path: &[i32]) -> Location {
        let span = self.spans.get(path).map(Vec::as_slice).unwrap_or_default();
        let at = |i: usize| span.get(i).map_or(1, |&v| v as usize + 1);
        Location { file: PathBuf::from(file), line: at(0), column: at(1) }
    }

    /// Where the element at `path` starts (1-based), if the file records it.
    pub(super) fn find(&self, file: &str, path: &[i32]) -> Option<Location> {
        self.spans.contains_key(path).then(|| self.location(file, path))
    }

    /// The leading comment's lines (see [`lines`]).
    pub(super) fn get(&self, path: &[i32]) -> Vec<String> {
        self.leading.get(path).map(|t| lines(t)).unwrap_or_default()
    }

    /// The leading comment's lines, else the trailing comment's (`int32 x = 1; // like this`),
    /// as fields and enum values are often documented.
    pub(super) fn get_or_trailing(&self, path: &[i32]) -> Vec<String> {
        let leading = self.get(path);
        if !leading.is_empty() {
            return leading;
        }
        self.trailing.get(path).map(|t| lines(t)).unwrap_or_default()
    }
}

/// Comment lines with the common `" "` after `//` removed and blank edges trimmed.
fn lines(text: &str) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end().to_owned()).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    lines[start..end].to_vec()
}
