//! The build.rs API: a `&mut Self` builder in the manner of `prost_build::Config`.

use std::path::{Path, PathBuf};

use crate::emit::{self, GeneratedFile};
use crate::error::{Error, Location};
use crate::ir::Api;
use crate::spec::proto::ProtoSpec;
use crate::{lower, spec};

/// Generated files, the spec files read, and warnings.
type Generated = (Vec<GeneratedFile>, Vec<PathBuf>, Vec<String>);

/// How to generate code. Start with [`Config::new`], adjust, then [`Config::compile`].
#[derive(Debug, Clone, Default)]
pub struct Config {
    out_dir: Option<PathBuf>,
    rerun_if_changed: Option<bool>,
    selection: lower::openapi::Selection,
    strict: bool,
    warnings: Vec<String>,
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

    /// Generates only the OpenAPI operations carrying one of these tags (and the types they use);
    /// repeatable. Protobuf specs are not affected.
    ///
    /// ```no_run
    /// switchboard_codegen::Config::new()
    ///     .tag("issues")
    ///     .tag("pulls")
    ///     .compile(&["api.github.com.json"], &[] as &[&str])?;
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn tag(&mut self, tag: impl Into<String>) -> &mut Self {
        self.selection.tags.push(tag.into());
        self
    }

    /// Generates only the OpenAPI operations with these `operationId`s (and the types they
    /// use); repeatable, combined with [`Config::tag`] (an operation must pass both).
    ///
    /// ```no_run
    /// switchboard_codegen::Config::new()
    ///     .operation("repos/get")
    ///     .compile(&["api.github.com.json"], &[] as &[&str])?;
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn operation(&mut self, id: impl Into<String>) -> &mut Self {
        self.selection.operations.push(id.into());
        self
    }

    /// Generates every OpenAPI component schema as a type, also those no operation uses
    /// (default: only the types operations reach, which keeps large APIs quick to compile).
    ///
    /// ```no_run
    /// switchboard_codegen::Config::new()
    ///     .all_schemas(true)
    ///     .compile(&["api.yaml"], &[] as &[&str])?;
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn all_schemas(&mut self, yes: bool) -> &mut Self {
        self.selection.all_schemas = yes;
        self
    }

    /// Turns every warning into an error: generation fails, listing them with their JSON
    /// pointers (OpenAPI) or `file:line:col` (protobuf), instead of generating a fallback
    /// (default: a warning each, and a working fallback). Warnings are what the generator could
    /// not handle in one item of a document: a schema typed as `serde_json::Value`, an operation
    /// skipped (a path the router cannot serve, or one matching the same requests as another),
    /// an operation whose parameter or request body schemas the server's validator cannot
    /// compile (its generated server answers 501 `UNIMPLEMENTED` naming the reason), a reference
    /// inside an `x-` extension that does not resolve; in a `.proto`, a `google.api.http`
    /// binding skipped (a template the router cannot parse, a field that does not exist, a
    /// route another binding of the service already takes: the method is still generated and
    /// served over gRPC and its other bindings, or with none left its default route). The CLI's
    /// `--strict`. The validator check needs the `check-schemas` feature (on by
    /// default); without it, `strict(true)` makes generation fail saying so.
    ///
    /// ```no_run
    /// switchboard_codegen::Config::new()
    ///     .strict(true)
    ///     .compile(&["api.yaml"], &[] as &[&str])?;
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn strict(&mut self, yes: bool) -> &mut Self {
        self.strict = yes;
        self
    }

    /// Warnings of the last [`Config::compile`] or [`Config::generate_checked`]: constructs typed
    /// with a fallback, each as `file#/json/pointer: message` (OpenAPI) or
    /// `file:line:col: message` (protobuf).
    ///
    /// ```no_run
    /// let mut config = switchboard_codegen::Config::new();
    /// config.compile(&["api.yaml"], &[] as &[&str])?;
    /// for w in config.warnings() {
    ///     eprintln!("warning: {w}");
    /// }
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Generates code for `protos` (paths inside one of `includes`, or names relative to one) and
    /// every file they import, and writes it to the output directory: `mod.rs` plus one file per
    /// package, and each service's OpenAPI document beside its package's file
    /// (`<package>.<Service>.openapi.json`, read by the code with `include_str!`), and its
    /// default call policy when its spec gives one (`<package>.<Service>.policy.json`: a
    /// `*_grpc_service_config.json` in the `.proto`'s directory naming it; `<module>.policy.json`
    /// from an OpenAPI document's `x-switchboard-policy`). Files whose contents did not change are
    /// not rewritten.
    ///
    /// Specs ending in `.yaml`, `.yml` or `.json` are OpenAPI 3.0 / 3.1 documents (paths as on
    /// disk; `includes` do not apply): each becomes a module named after the file
    /// (`petstore.yaml` → `petstore`) holding its types and one service trait. Warnings about
    /// constructs typed with a fallback are printed (`cargo:warning=` in build scripts) and kept
    /// in [`Config::warnings`].
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
        let (files, inputs, warnings) = self.generate_with_inputs(protos, includes)?;
        let in_build_script = std::env::var_os("OUT_DIR").is_some() && self.out_dir.is_none();
        for w in &warnings {
            if in_build_script {
                println!("cargo:warning={w}");
            } else {
                eprintln!("warning: {w}");
            }
        }
        self.warnings = warnings;
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

    /// Like [`Config::generate`], and keeps the warnings for [`Config::warnings`].
    ///
    /// ```no_run
    /// let mut config = switchboard_codegen::Config::new();
    /// let files = config.generate_checked(&["api.yaml"], &[] as &[&str])?;
    /// assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    /// # Ok::<(), switchboard_codegen::Error>(())
    /// ```
    pub fn generate_checked(&mut self, specs: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<Vec<GeneratedFile>, Error> {
        let (files, _, warnings) = self.generate_with_inputs(specs, includes)?;
        self.warnings = warnings;
        Ok(files)
    }

    /// The OpenAPI 3.1 document (pretty JSON) of every service declared in `protos` (services of
    /// imported files are left out); the schemas of every type they use are included. Bindings
    /// the generated server would leave out (see [`Config::strict`]) are left out here too, with
    /// a warning each on stderr (an error with `strict`).
    ///
    /// ```no_run
    /// let json = switchboard_codegen::Config::new().openapi(&["library/v1/library.proto"], &["proto"])?;
    /// std::fs::write("openapi.json", json)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn openapi(&self, protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<String, Error> {
        let (api, spec, warnings) = self.lower(protos, includes)?;
        for w in &warnings {
            eprintln!("warning: {w}");
        }
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
    ) -> Result<Generated, Error> {
        let (openapi, protos): (Vec<&Path>, Vec<&Path>) =
            protos.iter().map(AsRef::as_ref).partition(|p| spec::openapi::is_openapi(p));
        let (mut api, mut inputs, mut warnings) = if protos.is_empty() {
            (Api::default(), Vec::new(), Vec::new())
        } else {
            let (api, spec, warnings) = self.lower(&protos, includes)?;
            (api, spec.inputs, warnings)
        };
        // Per OpenAPI document: its file, its module and what was found reading and lowering it.
        let mut documents: Vec<(String, String, Vec<(String, String)>)> = Vec::new();
        // By module: the bundle of a document generated whole, made while it is lowered.
        let mut early: std::collections::HashMap<String, EarlyBundle> = std::collections::HashMap::new();
        for path in openapi {
            let mut spec = spec::openapi::load(path)?;
            let document = std::sync::Arc::new(std::mem::take(&mut spec.document));
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("api");
            let module = crate::ident::field(stem).trim_start_matches("r#").to_owned();
            let file = path.display().to_string();
            // Generated headers name the file, not the path (output must not depend on where the
            // checkout lives).
            let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or(&file).to_owned();
            let locate = |key: &str| crate::spec::openapi::locate_key(path, key);
            if BUNDLES && self.selection.is_all() {
                early.insert(module.clone(), EarlyBundle::start(&document));
            }
            // Errors name the file as given (lowering knows its name only).
            let (mut package, found_in_lowering) =
                lower::openapi::lower(&document, &module, &file_name, &self.selection, &locate).map_err(|e| match e {
                    Error::SpecFile { file: named, message } if named == file_name => Error::SpecFile { file: file.clone(), message },
                    e => e,
                })?;
            if api.packages.iter().any(|p| p.name == module) {
                return Err(Error::SpecFile { file, message: format!("a second spec would also generate module `{module}`; rename one file") });
            }
            let mut found: Vec<(String, String)> = spec.warnings.clone();
            found.extend(found_in_lowering.into_iter().map(|w| (w.pointer, w.message)));
            check_strict(self.strict, &file, &found)?;
            if let Some(models) = &mut package.models {
                models.bundle = BUNDLES;
            }
            documents.push((file, module, found));
            api.packages.push(package);
            inputs.extend(spec.inputs);
        }
        api.packages.sort_by(|a, b| a.name.cmp(&b.name));
        // The schema bundles are made while the code is rendered and formatted.
        let with_bundle: Vec<&crate::ir::Package> = api.packages.iter().filter(|p| p.models.as_ref().is_some_and(|m| m.bundle)).collect();
        let (files, bundles) = std::thread::scope(|scope| {
            let handles: Vec<_> =
                with_bundle.iter().map(|p| { let early = early.remove(&p.name); scope.spawn(move || schema_bundle(p, early)) }).collect();
            let files = emit::files(&api);
            let bundles: Vec<_> =
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::Config("the schema bundle's thread panicked".into())))).collect();
            (files, bundles)
        });
        let mut files = files?;
        // By module: the operations that will answer 501 (their schemas do not compile).
        let mut unservable: std::collections::HashMap<&str, Vec<(String, String)>> = std::collections::HashMap::new();
        for (package, bundle) in with_bundle.iter().zip(bundles) {
            let (text, found) = bundle?;
            unservable.insert(&package.name, found);
            files.push(GeneratedFile::text(crate::render::models::schemas_file(&package.name), text));
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        if self.strict && !BUNDLES && !documents.is_empty() {
            return Err(Error::Config("`strict` checks schemas with the server's validator: turn on the `check-schemas` feature".into()));
        }
        for (file, module, mut found) in documents {
            found.extend(unservable.remove(module.as_str()).unwrap_or_default());
            check_strict(self.strict, &file, &found)?;
            warnings.extend(found.into_iter().map(|(pointer, message)| format!("{file}#{pointer}: {message}")));
        }
        Ok((files, inputs, warnings))
    }

    /// Reads and lowers `protos`; spec errors and warnings (`file:line:col: message` each) name
    /// files as they are on disk. With [`Config::strict`], warnings are an error listing them.
    fn lower(&self, protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<(Api, ProtoSpec, Vec<String>), Error> {
        for p in protos {
            let p = p.as_ref();
            if p.extension().and_then(|e| e.to_str()) != Some("proto") {
                return Err(Error::SpecFile {
                    file: p.display().to_string(),
                    message: "unsupported spec format: expected `.proto`, or `.yaml` / `.yml` / `.json` (OpenAPI)".into(),
                });
            }
        }
        let mut spec = spec::proto::load(protos, includes)?;
        let (mut api, found) = lower::proto::lower(&spec.pool);
        lower::proto::keys::attach(&mut api, &spec)?;
        let policies = lower::proto::policy::attach(&mut api, &spec)?;
        spec.inputs.extend(policies);
        let found: Vec<(Location, String)> = found
            .into_iter()
            .map(|mut w| {
                w.location.file = spec.disk_path(&w.location.file);
                (w.location, w.message)
            })
            .collect();
        if self.strict && !found.is_empty() {
            let mut files: Vec<String> = Vec::new();
            for (location, _) in &found {
                let file = location.file.display().to_string();
                if !files.contains(&file) {
                    files.push(file);
                }
            }
            let list: Vec<String> = found.iter().map(|(location, message)| format!("  {location}: {message}")).collect();
            return Err(strict_error(files.join(", "), &list));
        }
        let warnings = found.into_iter().map(|(location, message)| format!("{location}: {message}")).collect();
        Ok((api, spec, warnings))
    }
}

/// The error `strict` makes of warnings (`list`: one indented line each) in `file` (for protobuf,
/// every file they are in).
fn strict_error(file: String, list: &[String]) -> Error {
    Error::SpecFile {
        file,
        message: format!(
            "{} warning{} (errors with --strict / `Config::strict`):\n{}",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            list.join("\n")
        ),
    }
}

/// With `strict`, the error listing what was `found` (`(JSON pointer, message)` each) in the
/// OpenAPI document `file`, if anything was.
fn check_strict(strict: bool, file: &str, found: &[(String, String)]) -> Result<(), Error> {
    if !strict || found.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = found.iter().map(|(pointer, message)| format!("  #{pointer}: {message}")).collect();
    Err(strict_error(file.to_owned(), &list))
}

/// Whether codegen writes schema bundles: only with the server's own validator to make them.
const BUNDLES: bool = cfg!(feature = "check-schemas");

/// A schema bundle being made from the input document, on its own thread, while the document
/// is lowered: used when every operation of the document is generated.
#[cfg(feature = "check-schemas")]
struct EarlyBundle {
    document: std::sync::Arc<serde_json::Value>,
    made: std::thread::JoinHandle<(String, Vec<(String, String, String)>)>,
}

/// Without the validator there are no bundles.
#[cfg(not(feature = "check-schemas"))]
struct EarlyBundle;

#[cfg(not(feature = "check-schemas"))]
impl EarlyBundle {
    fn start(_: &std::sync::Arc<serde_json::Value>) -> Self {
        EarlyBundle
    }
}

#[cfg(feature = "check-schemas")]
impl EarlyBundle {
    fn start(document: &std::sync::Arc<serde_json::Value>) -> Self {
        let doc = std::sync::Arc::clone(document);
        EarlyBundle { document: std::sync::Arc::clone(document), made: std::thread::spawn(move || switchboard::api::__schema_bundle_of(&doc)) }
    }

    /// How many operations the document has (as the bundle counts them: path items' methods).
    fn operations(&self) -> usize {
        const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
        let paths = self.document.get("paths").and_then(serde_json::Value::as_object);
        paths.into_iter().flat_map(|p| p.values()).map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count()).sum()
    }
}

/// The package's schema bundle (each parameter and request body schema of the document the
/// generated code embeds, transformed and checked by the server's own validator) and the
/// generated operations it cannot compile schemas for: `(operation pointer, message)` each.
/// `early` is the bundle of the input document: it is the one wanted when the package has
/// every operation of it (none was skipped), else it is made again from the package's document.
#[cfg(feature = "check-schemas")]
fn schema_bundle(package: &crate::ir::Package, early: Option<EarlyBundle>) -> Result<(String, Vec<(String, String)>), Error> {
    let Some(models) = &package.models else { return Ok((String::new(), Vec::new())) };
    let early = early.filter(|e| e.operations() == models.operations.len()).map(|e| e.made.join());
    let (bundle, found) = match early {
        Some(Ok(made)) => made,
        Some(Err(_)) => return Err(Error::Config("the schema bundle's thread panicked".into())),
        None => match switchboard::api::__schema_bundle(&models.document) {
            Ok(made) => made,
            // The bundle then says why: every operation answers 501 with the reason.
            Err((reason, bundle)) => {
                return Ok((bundle, vec![(String::new(), format!("the bundled document cannot be checked: {reason}"))]))
            }
        },
    };
    let unservable = models
        .operations
        .iter()
        .filter_map(|op| {
            let (_, _, reason) = found.iter().find(|(m, p, _)| m.eq_ignore_ascii_case(&op.method) && *p == op.path)?;
            Some((
                op.pointer.clone(),
                format!("operation `{}` ({} {}) will answer 501 Unimplemented: {reason}", op.id, op.method, op.path),
            ))
        })
        .collect();
    Ok((bundle, unservable))
}

#[cfg(not(feature = "check-schemas"))]
fn schema_bundle(_: &crate::ir::Package, _: Option<EarlyBundle>) -> Result<(String, Vec<(String, String)>), Error> {
    Err(Error::Config("schema bundles are made with the server's validator: turn on the `check-schemas` feature".into()))
}
