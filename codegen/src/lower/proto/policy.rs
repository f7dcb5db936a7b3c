//! Spec defaults of protobuf services: the `*_grpc_service_config.json` files in the directory of
//! the `.proto` declaring a service (googleapis' convention, one per API directory, e.g.
//! `google/cloud/tasks/v2/cloudtasks_grpc_service_config.json`).
//!
//! A file is the default policy of every service of that directory it names in a `methodConfig`
//! entry (by full name), and of all of them when it has a default entry (`"name": [{}]`). It is
//! embedded whole, as written, so the runtime's JSON paths are the file's. gRPC defines no merge
//! of two service configs, so a service two files of its directory apply to is an error naming
//! both: keep its entries in one file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Location};
use crate::ir::{Api, Policy};
use crate::spec::proto::ProtoSpec;

/// The name service config files end with.
pub const SUFFIX: &str = "_grpc_service_config.json";

/// One service config file, read and checked.
struct ConfigFile {
    /// On disk, as errors name it.
    disk: PathBuf,
    /// Relative to its include directory (`/`-separated), as the generated docs name it.
    name: String,
    config: Value,
    /// The `(service, method)` names of its entries.
    names: Vec<(String, String)>,
}

impl ConfigFile {
    fn applies_to(&self, service: &str) -> bool {
        self.names.iter().any(|(s, _)| s.is_empty() || s == service)
    }
}

/// Gives every service of `api` whose `.proto` directory has a service config naming it that
/// config as its [`Policy`]. Returns what was read (the files, and the directories looked in),
/// for `cargo:rerun-if-changed`.
pub fn attach(api: &mut Api, spec: &ProtoSpec) -> Result<Vec<PathBuf>, Error> {
    let mut dirs: HashMap<PathBuf, Vec<ConfigFile>> = HashMap::new();
    let mut read: Vec<PathBuf> = Vec::new();
    for service in api.packages.iter_mut().flat_map(|p| &mut p.services) {
        let disk = spec.disk_path(Path::new(&service.file));
        if !disk.is_file() {
            continue; // built in (the well-known types)
        }
        let dir = match disk.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains_key(&dir) {
            let relative = Path::new(&service.file).parent().unwrap_or(Path::new(""));
            let files = read_dir(&dir, relative)?;
            read.push(dir.clone());
            read.extend(files.iter().map(|f| f.disk.clone()));
            dirs.insert(dir.clone(), files);
        }
        let full = if service.package.is_empty() { service.name.clone() } else { format!("{}.{}", service.package, service.name) };
        let mut found = dirs[&dir].iter().filter(|f| f.applies_to(&full));
        let Some(file) = found.next() else { continue };
        if let Some(other) = found.next() {
            return Err(Error::SpecFile {
                file: file.disk.display().to_string(),
                message: format!(
                    "`{full}` gets its default policy from this file and from {} too; gRPC defines no merge of service configs: keep its entries in one file",
                    other.disk.display()
                ),
            });
        }
        service.policy = Some(Policy::File { name: file.name.clone(), config: file.config.clone() });
    }
    Ok(read)
}

/// The service configs in `dir` (`relative` to its include directory), by file name.
fn read_dir(dir: &Path, relative: &Path) -> Result<Vec<ConfigFile>, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.ends_with(SUFFIX) && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let disk = dir.join(&name);
        let text = std::fs::read_to_string(&disk).map_err(io(&disk))?;
        let config: Value = serde_json::from_str(&text).map_err(|e| Error::Spec {
            location: Location { file: disk.clone(), line: e.line(), column: e.column() },
            message: format!("a service config must be JSON: {e}"),
        })?;
        let names = crate::lower::policy::check(&config)
            .map_err(|p| Error::SpecFile { file: disk.display().to_string(), message: format!("{}: {}", p.path, p.message) })?;
        let mut relative: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        relative.push(name);
        out.push(ConfigFile { disk, name: relative.join("/"), config, names });
    }
    Ok(out)
}
