//! The backends Moviola is built with. The CPU backend (`flex`, pure Rust) is always there;
//! CUDA and wgpu come with the `cuda` and `wgpu` features.

pub use burn::backend::Flex as Cpu;
pub use burn::backend::flex::FlexDevice as CpuDevice;

#[cfg(feature = "cuda")]
pub use burn::backend::Cuda;

/// Whether the NVIDIA driver library can be loaded. burn-cuda loads `libcuda.so.1` at run time
/// and its device thread panics when it is missing, so check before creating a CUDA device.
pub fn cuda_driver_present() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
        "/usr/lib/libcuda.so.1",
        "/usr/lib/wsl/lib/libcuda.so.1",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}
