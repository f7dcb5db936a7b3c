//! Protobuf input through protox: no protoc needed. Imports resolve against include directories;
//! the well-known types (`google/protobuf/*.proto`) are built in and take precedence.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost_reflect::DescriptorPool;
use protox::file::{ChainFileResolver, GoogleFileResolver, IncludeFileResolver};

use crate::error::{Error, Location};

/// A compiled set of protobuf files.
pub struct ProtoSpec {
    /// Every file, imports included, with source info (comments, positions) and options.
    pub pool: DescriptorPool,
    /// Files on disk that were read (for `cargo:rerun-if-changed`); built-ins are not listed.
    pub inputs: Vec<PathBuf>,
    /// Names (relative to their include directory) of the files asked for, imports left out.
    pub roots: Vec<String>,
    includes: Vec<PathBuf>,
}

impl ProtoSpec {
    /// The file on disk for a name relative to an include directory (as errors should show it).
    pub fn disk_path(&self, name: &Path) -> PathBuf {
        self.includes.iter().map(|i| i.join(name)).find(|p| p.is_file()).unwrap_or_else(|| name.to_path_buf())
    }
}

/// Parses and checks `files` (paths inside one of `includes`, or names relative to one).
pub fn load(files: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<ProtoSpec, Error> {
    let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
    // The bundled well-known types come first: prost-types (which generated code uses for them)
    // is built from exactly these, and copies found in include trees are often newer than what
    // the parser accepts (googleapis bundles' descriptor.proto uses editions syntax).
    let mut resolver = ChainFileResolver::new();
    resolver.add(GoogleFileResolver::new());
    for include in &includes {
        resolver.add(IncludeFileResolver::new(include.clone()));
    }
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_source_info(true).include_imports(true);
    for file in files {
        let file = file.as_ref();
        compiler.open_file(file).map_err(|e| convert(e, &includes, &file.display().to_string()))?;
    }
    let inputs = compiler.files().filter_map(|f| f.path().map(Path::to_path_buf)).collect();
    let roots = compiler.files().filter(|f| !f.is_import()).map(|f| f.name().to_owned()).collect();
    Ok(ProtoSpec { pool: compiler.descriptor_pool(), inputs, roots, includes })
}

/// Turns a protox diagnostic into `file:line:col: message`.
fn convert(err: protox::Error, includes: &[PathBuf], opened: &str) -> Error {
    let message = err.to_string();
    let Some(file) = err.file().map(str::to_owned) else {
        return Error::SpecFile { file: opened.to_owned(), message };
    };
    let on_disk = includes.iter().map(|i| i.join(&file)).find(|p| p.is_file()).unwrap_or_else(|| PathBuf::from(&file));
    let position = err.labels().and_then(|mut labels| labels.next()).and_then(|label| {
        let source = err.source_code()?;
        let contents = source.read_span(label.inner(), 0, 0).ok()?;
        Some((contents.line() + 1, contents.column() + 1))
    });
    match position {
        Some((line, column)) => Error::Spec { location: Location { file: on_disk, line, column }, message },
        None => Error::SpecFile { file: on_disk.display().to_string(), message },
    }
}
