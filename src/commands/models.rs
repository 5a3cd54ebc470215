//! `failup models prepare`: make what a backend needs beyond the model folder.

use crate::cli::{ModelsCommand, PrepareArgs};
use failup::chunk::LongText;
use failup::embed::{prepare, Backend, ModelDir, Precision};
use failup::error::Result;
use failup::pipeline::{Engine, EngineOptions};

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
            "failup: {} runs the model folder {} as it is; nothing to prepare",
            backend.name(),
            model.dir.display()
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
    // As the help promises: a broken model file, or an engine this CPU cannot run, is told
    // now rather than at the first real run. The default precision first, then fp32 where that
    // is another file (model.onnx beside model.int8.onnx), as a few-shot head and embed use it.
    let load = |precision| {
        let engine = Engine::load(&EngineOptions {
            model: args.model.clone(),
            taxonomy: None,
            backend,
            threads: 0,
            batch_size: None,
            long_text: LongText::default(),
            precision,
        })?;
        eprintln!(
            "failup: {} loads {} on the {} engine in {}",
            model.dir.display(),
            engine.model.name(),
            engine.backend.name(),
            engine.precision.name()
        );
        Ok::<_, failup::Error>(engine.precision)
    };
    match (load(None), backend) {
        // Without tiles the AMX engine's fp32 cannot run, but its bf16 mode may.
        (Err(fp32), Backend::Amx) => {
            load(Some(Precision::Bf16)).map_err(|_| fp32)?;
            eprintln!(
                "failup: on this CPU the AMX engine runs bf16 only (fp32 needs AMX tiles), so any \
                 run with --backend amx needs --precision bf16"
            );
        }
        (Ok(precision), _) if precision != Precision::Fp32 => {
            load(Some(Precision::Fp32))?;
        }
        (loaded, _) => {
            loaded?;
        }
    }
    Ok(())
}
