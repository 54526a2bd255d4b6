//! Saving and loading a network's weights as a burn record (named MessagePack, full
//! precision): what `moviola models fetch` writes once and the jobs read.

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;

use crate::esrgan::ModelError;

/// Saves `module`'s weights to `path` (`.mpk` is added).
pub fn save<B: Backend, M: Module<B>>(module: M, path: &std::path::Path) -> Result<(), ModelError> {
    module
        .save_file(path.to_path_buf(), &NamedMpkFileRecorder::<FullPrecisionSettings>::new())
        .map_err(|e| ModelError::Record(e.to_string()))
}

/// Loads weights saved by [`save`] into `shape` (the untrained network of the same shape).
pub fn load<B: Backend, M: Module<B>>(shape: M, path: &std::path::Path, device: &B::Device) -> Result<M, ModelError> {
    shape
        .load_file(path.to_path_buf(), &NamedMpkFileRecorder::<FullPrecisionSettings>::new(), device)
        .map_err(|e| ModelError::Record(e.to_string()))
}
