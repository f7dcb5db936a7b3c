//! The build.rs API: a `&mut Self` builder in the manner of `prost_build::Config`.

use std::path::{Path, PathBuf};

use crate::emit::{self, GeneratedFile};
use crate::error::Error;
use crate::ir::Api;
use crate::spec::proto::ProtoSpec;
use crate::{lower, spec};

/// How to generate code. Start with [`Config::new`], adjust, then [`Config::compile`].
#[derive(Debug, Clone, Default)]
pub struct Config {
    out_dir: Option<PathBuf>,
    rerun_if_changed: Option<bool>,
}

impl Config {
    /// Default settings: output to `$OUT_DIR`, `cargo:rerun-if-changed` lines when run by cargo.
    ///
    /// ```no_run
    /// // build.rs
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     switchboard_codegen::Config::new().compile(&["proto/library.proto"], &["proto"])?;
    ///     Ok(())
    /// }
    /// // src/lib.rs
    /// // pub mod api { include!(concat!(env!("OUT_DIR"), "/mod.rs")); }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the module tree here instead of `$OUT_DIR`.
    ///
    /// ```no_run
    /// switchboard_codegen::Config::new()
    ///     .out_dir("src/gen")
    ///     .compile(&["proto/library.proto"], &["proto"])?;
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed=<file>` for every spec file read (default: yes
    /// when running inside a build script, i.e. when `OUT_DIR` is set).
    ///
    /// ```no_run
    /// switchboard_codegen::Config::new()
    ///     .emit_rerun_if_changed(false)
    ///     .compile(&["proto/library.proto"], &["proto"])?;
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn emit_rerun_if_changed(&mut self, yes: bool) -> &mut Self {
        self.rerun_if_changed = Some(yes);
        self
    }

    /// Generates code for `protos` (paths inside one of `includes`, or names relative to one) and
    /// every file they import, and writes it to the output directory: `mod.rs` plus one file per
    /// package. Files whose contents did not change are not rewritten.
    ///
    /// ```no_run
    /// switchboard_codegen::Config::new().compile(&["proto/library.proto"], &["proto"])?;
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn compile(&mut self, protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| Error::Config("OUT_DIR is not set: call `out_dir(...)` outside build scripts".into()))?,
        };
        let (files, inputs) = self.generate_with_inputs(protos, includes)?;
        if self.rerun_if_changed.unwrap_or_else(|| std::env::var_os("OUT_DIR").is_some()) {
            for input in &inputs {
                println!("cargo:rerun-if-changed={}", input.display());
            }
        }
        emit::write(&out_dir, &files)?;
        Ok(())
    }

    /// Generates code in memory without writing it.
    ///
    /// ```no_run
    /// let files = switchboard_codegen::Config::new().generate(&["proto/library.proto"], &["proto"])?;
    /// for f in &files {
    ///     println!("{}: {} bytes", f.name, f.contents.len());
    /// }
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn generate(&self, protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<Vec<GeneratedFile>, Error> {
        Ok(self.generate_with_inputs(protos, includes)?.0)
    }

    /// The OpenAPI 3.1 document (pretty JSON) of every service declared in `protos` (services of
    /// imported files are left out); the schemas of every type they use are included.
    ///
    /// ```no_run
    /// let json = switchboard_codegen::Config::new().openapi(&["library/v1/library.proto"], &["proto"])?;
    /// std::fs::write("openapi.json", json)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn openapi(&self, protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<String, Error> {
        let (api, spec) = self.lower(protos, includes)?;
        let services: Vec<&crate::ir::Service> = api
            .packages
            .iter()
            .flat_map(|p| &p.services)
            .filter(|s| spec.roots.contains(&s.file))
            .collect();
        let document = crate::openapi::document(&api, &services);
        let mut text = serde_json::to_string_pretty(&document).map_err(|e| Error::Config(e.to_string()))?;
        text.push('\n');
        Ok(text)
    }

    fn generate_with_inputs(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(Vec<GeneratedFile>, Vec<PathBuf>), Error> {
        let (api, spec) = self.lower(protos, includes)?;
        Ok((emit::files(&api)?, spec.inputs))
    }

    /// Reads and lowers `protos`; spec errors name files as they are on disk.
    fn lower(&self, protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<(Api, ProtoSpec), Error> {
        for p in protos {
            let p = p.as_ref();
            if p.extension().and_then(|e| e.to_str()) != Some("proto") {
                return Err(Error::SpecFile {
                    file: p.display().to_string(),
                    message: "unsupported spec format: expected a `.proto` file".into(),
                });
            }
        }
        let spec = spec::proto::load(protos, includes)?;
        let api = lower::proto::lower(&spec.pool).map_err(|e| match e {
            Error::Spec { mut location, message } => {
                location.file = spec.disk_path(&location.file);
                Error::Spec { location, message }
            }
            other => other,
        })?;
        Ok((api, spec))
    }
}
