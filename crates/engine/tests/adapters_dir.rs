//! An adapters folder holding an adapter made for another base: the bundled folder skips it
//! with a warning, a folder the user names fails, naming it.

use std::path::{Path, PathBuf};

use switchboard_engine::{AdapterRegistry, EngineError, RegistryConfig};
use switchboard_model::{DType, Device, ModelSource};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("ls") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn registry() -> AdapterRegistry {
    let base = ModelSource::open(golden().join("base")).expect("qwen2 base");
    AdapterRegistry::new(
        base.config().clone(),
        DType::F32,
        Device::Cpu,
        RegistryConfig::default(),
    )
}

#[test]
fn misfit_adapters_are_skipped_from_the_bundled_folder_and_refused_from_a_named_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_dir(&golden().join("adapter_a"), &tmp.path().join("fits"));
    copy_dir(
        &golden().join("llama/tiny_llama_adapter"),
        &tmp.path().join("llama-only"),
    );

    let lenient = registry();
    let loaded = lenient
        .load_dir_fitting(tmp.path())
        .expect("loads what fits");
    let names: Vec<&str> = loaded.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["fits"]);

    let strict = registry();
    let err = strict
        .load_dir(tmp.path())
        .expect_err("a misfit is an error");
    assert!(matches!(err, EngineError::Model(_)), "{err:?}");
    assert!(err.to_string().contains("llama-only"), "{err}");
}
