//! `failup models prepare`: make what a backend needs beyond the model folder.

use crate::cli::{ModelsCommand, PrepareArgs};
use failup::embed::{prepare, Backend, ModelDir};
use failup::error::Result;

pub fn run(command: ModelsCommand) -> Result<()> {
    match command {
        ModelsCommand::Prepare(args) => run_prepare(args),
    }
}

fn run_prepare(args: PrepareArgs) -> Result<()> {
    let model = ModelDir::resolve(args.model.as_deref())?;
    let backend: Backend = args.backend.into();
    let prepared = prepare(backend, &model, args.force)?;
    match (&prepared.path, backend) {
        (None, Backend::Rten | Backend::Amx | Backend::Auto) => eprintln!(
            "failup: {} runs {} as it is; nothing to prepare",
            backend.name(),
            model.dir.join("model.onnx").display()
        ),
        (None, backend) => eprintln!("failup: {}: nothing to prepare", backend.name()),
        (Some(path), backend) => {
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            eprintln!(
                "failup: {}: weights {} ({:.1} MB); the model loads from them",
                backend.name(),
                if prepared.converted {
                    "converted from model.onnx"
                } else {
                    "already converted"
                },
                size as f64 / 1e6
            );
            super::print_out(&format!("{}\n", path.display()))?;
        }
    }
    Ok(())
}
