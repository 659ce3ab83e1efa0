//! Writing the put-back file: a new private file beside the name asked for, never replacing
//! anything, and never one psql would run a meta-command from.

use std::io::Write;
use std::path::Path;

use super::CompareError;
use crate::script::{inert, meta_command};

/// The file name a put-back is written to by default: `<table>.putback.sql`, with only
/// letters, digits, `_` and `-` kept from the table's name (others become `_`), so a name can
/// never reach another folder.
pub fn default_file_name(table: &str) -> String {
    let name: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}.putback.sql",
        if name.is_empty() { "table" } else { &name }
    )
}

/// Refuses `path` when something is there (a file, a folder, a link): a put-back never
/// replaces anything.
pub fn refuse_existing(path: &Path) -> Result<(), CompareError> {
    match path.symlink_metadata() {
        Ok(_) => Err(CompareError::OutputExists {
            path: inert(&path.display().to_string()),
        }),
        Err(_) => Ok(()),
    }
}

/// Writes `sql` to `path`: a new file, mode 0600, written under a temporary name beside it,
/// synced, then renamed to `path` only if nothing is there (an existing file is never
/// replaced).
pub fn write_putback(path: &Path, sql: &str) -> Result<(), CompareError> {
    refuse_existing(path)?;
    let shown = inert(&path.display().to_string());
    let output = |e: std::io::Error| CompareError::Output {
        path: shown.clone(),
        reason: e.to_string(),
    };
    if meta_command(sql).is_some() {
        // The names are quoted and every comment is inert, so this does not happen; a file
        // psql would run a command from is not written even so.
        return Err(CompareError::Unsafe {
            table: shown.clone(),
            line: meta_command(sql).unwrap_or_default(),
        });
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(output)?;
    file.write_all(sql.as_bytes()).map_err(output)?;
    file.as_file().sync_all().map_err(output)?;
    file.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            CompareError::OutputExists {
                path: shown.clone(),
            }
        } else {
            output(e.error)
        }
    })?;
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_named_after_the_table_and_stays_in_the_folder() {
        assert_eq!(default_file_name("orders"), "orders.putback.sql");
        assert_eq!(default_file_name("../../etc/x"), "______etc_x.putback.sql");
        assert_eq!(default_file_name(""), "table.putback.sql");
    }

    #[test]
    fn a_putback_is_a_new_private_file_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.putback.sql");
        write_putback(&path, "BEGIN;\nCOMMIT;\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "BEGIN;\nCOMMIT;\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = write_putback(&path, "other").unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "BEGIN;\nCOMMIT;\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
