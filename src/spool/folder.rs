//! The spool folder and its files' modes: the folder holds share secrets, so it is the owner's
//! alone (0700) and every file in it is created 0600.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{Error, ErrorKind, Result};

/// Mode of a folder this library creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a file this library creates.
pub const FILE_MODE: u32 = 0o600;

/// Makes sure `dir` is a folder only its owner may enter: creates it (0700, parents as the
/// umask says) if missing; refuses a non-folder, and a folder whose group or others have any
/// access rather than change the mode of a folder someone else chose.
pub fn prepare(dir: &Path) -> Result<()> {
    let shown = dir.display();
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::new(
                ErrorKind::BadFolder,
                format!("spool folder {shown} exists and is not a folder"),
            ));
        }
        Ok(meta) => return check_mode(dir, meta.permissions().mode()),
        Err(e) if e.kind() == IoKind::NotFound => {}
        Err(e) => return Err(Error::io(format_args!("spool folder {shown}"), &e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| {
            Error::io(
                format_args!("spool folder {shown}: creating its parent"),
                &e,
            )
        })?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        // created meanwhile by someone else: it must pass the same checks
        Err(e) if e.kind() == IoKind::AlreadyExists => prepare(dir),
        Err(e) => Err(Error::io(
            format_args!("spool folder {shown}: creating it"),
            &e,
        )),
    }
}

fn check_mode(dir: &Path, mode: u32) -> Result<()> {
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::BadFolder,
        format!(
            "spool folder {} has mode {:03o}: it will hold share secrets, so its group and others \
             must have no access (chmod 700 it, or name a new folder and the library creates it 0700)",
            dir.display(),
            mode & 0o777
        ),
    ))
}

/// Opens `path` for reading and appending, creating it 0600 if `create` and it is missing; a
/// file found with group or other bits is narrowed to 0600.
pub fn open_file(path: &Path, create: bool) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .mode(FILE_MODE)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// Creates `path` new (0600), for reading and appending; fails if it exists.
pub fn create_new_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes `path`; a missing file is fine.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != IoKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    /// A temporary folder of mode 0700, as a spool folder must be.
    pub fn private_tempdir() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::set_permissions(t.path(), fs::Permissions::from_mode(DIR_MODE)).unwrap();
        t
    }

    pub fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_missing_folder_is_created_0700_with_its_parents() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b/spool");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        prepare(&dir).unwrap(); // again: it is ours and fine
    }

    #[test]
    fn a_file_or_an_open_folder_is_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("plain");
        fs::write(&file, "x").unwrap();
        let e = prepare(&file).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadFolder);
        assert!(e.message.contains(&*file.to_string_lossy()), "{e}");

        let open = t.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o750)).unwrap();
        let e = prepare(&open).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadFolder);
        assert!(
            e.message.contains("750") && e.message.contains(&*open.to_string_lossy()),
            "{e}"
        );
        assert_eq!(
            mode(&open),
            0o750,
            "the library leaves a folder it did not create alone"
        );
    }

    #[test]
    fn files_are_created_0600_and_narrowed_to_it() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("f");
        drop(open_file(&path, true).unwrap());
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        drop(open_file(&path, false).unwrap());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            create_new_file(&path).unwrap_err().kind(),
            IoKind::AlreadyExists
        );
        remove_if_present(&path).unwrap();
        remove_if_present(&path).unwrap();
        drop(create_new_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
    }
}
