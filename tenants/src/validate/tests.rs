//! The package's own tests (`tests/*.yaml`, see `crate::testing`): read and checked against the
//! package like every other file, so `validate` reports a step naming a transition that does not
//! exist before anyone runs it.

use super::*;

impl Validation {
    pub(super) fn check_tests(&mut self, dir: &Path) {
        let (files, errors) = crate::testing::load_each(dir);
        for e in errors {
            self.package_error(dir, e);
        }
        if files.is_empty() {
            return;
        }
        // The tests are checked against the package as it loads (its errors are reported above).
        let Ok(package) = crate::Package::load_dir(dir) else { return };
        for e in crate::testing::check(&package, &files) {
            self.package_error(dir, e);
        }
    }

    fn package_error(&mut self, dir: &Path, e: crate::PackageError) {
        let relative = |file: &str| {
            Path::new(file)
                .strip_prefix(dir)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or(file.to_string())
        };
        match e {
            crate::PackageError::Parse { file, path, message }
            | crate::PackageError::Invalid { file, path, message } => self.error(&relative(&file), &path, message),
            crate::PackageError::Io { file, message } => self.error(&relative(&file), "", message),
            crate::PackageError::Stored(message) => self.error("", "", message),
        }
    }
}
