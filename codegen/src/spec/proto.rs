//! Protobuf input through protox: no protoc needed. Imports resolve against include directories;
//! the well-known types (`google/protobuf/*.proto`) and switchboard's own options
//! (`switchboard/options.proto`, [`OPTIONS_FILE`]) are built in and take precedence.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost_reflect::DescriptorPool;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver};

use crate::error::{Error, Location};

/// The name `.proto` files import switchboard's options by: `import "switchboard/options.proto";`.
pub const OPTIONS_FILE: &str = "switchboard/options.proto";

/// The text of `switchboard/options.proto` (package `switchboard`): the field option
/// `(switchboard.key)`, extension number 58274 of `google.protobuf.FieldOptions`, which marks an
/// event's partition key field. Built in: files import it without a copy on the include path.
pub const OPTIONS_SOURCE: &str = include_str!("../../proto/switchboard/options.proto");

/// Serves the built-in `switchboard/options.proto`.
struct OptionsFileResolver;

impl FileResolver for OptionsFileResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == OPTIONS_FILE {
            File::from_source(name, OPTIONS_SOURCE)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

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
    // the parser accepts (googleapis bundles' descriptor.proto uses editions syntax). So are
    // switchboard's options: the codegen reading them knows this version.
    let mut resolver = ChainFileResolver::new();
    resolver.add(GoogleFileResolver::new());
    resolver.add(OptionsFileResolver);
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
    // The parser knows `syntax` only; a file declaring an edition gets one plain sentence.
    if let Some((line, column, edition)) = std::fs::read_to_string(&on_disk).ok().and_then(|text| edition_declaration(&text)) {
        return Error::Spec {
            location: Location { file: on_disk, line, column },
            message: format!("Protobuf Editions (`edition = {edition}`) are not supported yet; switchboard reads `syntax = \"proto2\"` and `syntax = \"proto3\"` files"),
        };
    }
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

/// Where the file's first statement is an `edition = "..."` declaration: its 1-based line and
/// column, and the quoted edition.
fn edition_declaration(text: &str) -> Option<(usize, usize, String)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    // Skip whitespace and comments before the first statement.
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"//") {
            i += bytes[i..].iter().position(|&b| b == b'\n').unwrap_or(bytes.len() - i);
        } else if bytes[i..].starts_with(b"/*") {
            i += 2 + text[i + 2..].find("*/").map_or(bytes.len() - i - 2, |end| end + 2);
        } else {
            break;
        }
    }
    let rest = text.get(i..)?;
    let after = rest.strip_prefix("edition")?;
    if !after.starts_with(|c: char| c.is_whitespace() || c == '=') {
        return None;
    }
    let value = after.trim_start().strip_prefix('=')?.trim_start();
    let edition: String = value.chars().take_while(|c| *c != ';' && *c != '\n').collect();
    let line = text[..i].matches('\n').count() + 1;
    let column = text[..i].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column, edition.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn edition_declarations_are_found_after_comments() {
        assert_eq!(super::edition_declaration("edition = \"2023\";\n"), Some((1, 1, "\"2023\"".into())));
        let text = "// Copyright\n/* block\n */\n  edition=\"2024\";\npackage a;";
        assert_eq!(super::edition_declaration(text), Some((4, 3, "\"2024\"".into())));
        assert_eq!(super::edition_declaration("syntax = \"proto3\";\n"), None);
        assert_eq!(super::edition_declaration("editions_are_not_a_keyword"), None);
        assert_eq!(super::edition_declaration("/* unterminated"), None);
        assert_eq!(super::edition_declaration(""), None);
    }
}
