//! The `switchboard` command-line tool: a thin adapter over [`switchboard_codegen::Config`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generation allocates and frees millions of small strings, syntax trees and JSON values on
/// several threads; mimalloc spends a fraction of glibc's time on that (see BENCHMARKS.md,
/// "Generation at scale").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// switchboard: interface definitions in, one Rust service trait (and its servers and clients) out;
/// also exports the OpenAPI 3.1 document of their HTTP bindings.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a Rust module tree (root: OUT_DIR/mod.rs) from specs.
    Generate {
        /// Directory to resolve imports against (repeatable; default: the current directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Output directory; `mod.rs` there is the root of the generated tree.
        #[arg(short = 'o', long = "out", value_name = "OUT_DIR")]
        out: PathBuf,
        /// OpenAPI only: generate just the operations with this tag (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// OpenAPI only: generate just the operation with this operationId (repeatable).
        #[arg(long = "operation", value_name = "ID")]
        operations: Vec<String>,
        /// OpenAPI only: generate every component schema, also those no operation uses.
        #[arg(long = "all-schemas")]
        all_schemas: bool,
        /// Turn warnings into errors: fail, listing them, when something in a document cannot be
        /// generated as written (without it: a warning each, and a fallback such as a
        /// `serde_json::Value` type, a skipped operation or `google.api.http` binding, or an
        /// operation answering 501).
        #[arg(long = "strict")]
        strict: bool,
        /// Spec files: `.proto` (a path inside an include directory, as protoc accepts), or
        /// OpenAPI 3.0 / 3.1 documents (`.yaml`, `.yml`, `.json`; each becomes a module named
        /// after the file).
        #[arg(value_name = "SPEC", required = true)]
        specs: Vec<PathBuf>,
    },
    /// Print the OpenAPI 3.1 document (JSON) of every service in the specs.
    ///
    /// Paths come from the methods' google.api.http bindings (or the default
    /// `POST /<package>.<Service>/<Method>`), schemas follow the proto3 JSON mapping. Errors go to
    /// stderr as `file:line:col: message` (exit code 1).
    Openapi {
        /// Directory to resolve imports against (repeatable; default: the current directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Spec files: `.proto` (a path inside an include directory, as protoc accepts). Services
        /// of imported files are not exported.
        #[arg(value_name = "SPEC", required = true)]
        specs: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let defaulted = |include: Vec<PathBuf>| if include.is_empty() { vec![PathBuf::from(".")] } else { include };
    let result = match cli.command {
        Command::Generate { include, out, tags, operations, all_schemas, strict, specs } => {
            let mut config = switchboard_codegen::Config::new();
            config.emit_rerun_if_changed(false).out_dir(&out).all_schemas(all_schemas).strict(strict);
            for t in tags {
                config.tag(t);
            }
            for o in operations {
                config.operation(o);
            }
            config.compile(&specs, &defaulted(include))
        }
        Command::Openapi { include, specs } => {
            switchboard_codegen::Config::new().openapi(&specs, &defaulted(include)).map(|json| print!("{json}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
