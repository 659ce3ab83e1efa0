//! A real, small filesystem for the file store: a tmpfs of a chosen size, mounted for one test
//! and unmounted when dropped. A full disk is then the kernel's ENOSPC, not a simulation.
//!
//! Mounting needs root. Without it the test is skipped with a visible message, and under
//! `CI=true` it fails, so a CI that cannot run the fault suite does not pass silently.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted (and its directory removed) on drop.
pub struct Tmpfs {
    _parent: tempfile::TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    /// A tmpfs of `bytes` (rounded up to pages by the kernel), or `None` when this process
    /// cannot mount one (not root).
    pub fn mount(bytes: u64) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let mount = parent.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0777"))
            .arg("tmpfs")
            .arg(&mount)
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Tmpfs {
                _parent: parent,
                mount,
            }),
            other => {
                let why = match other {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "cannot mount a tmpfs for the full-disk tests ({why}); CI runs them as root"
                    );
                }
                eprintln!("SKIPPED: cannot mount a tmpfs ({why}); the full-disk test did not run");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Bytes still free on it.
    pub fn free_bytes(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Fills it until only about `bytes` remain free.
    pub fn fill_leaving(&self, bytes: u64) {
        self.unfill();
        let free = self.free_bytes();
        if free > bytes {
            let filler = vec![0u8; (free - bytes) as usize];
            std::fs::write(self.mount.join("filler"), filler).unwrap();
        }
    }

    /// Gives back the space [`Tmpfs::fill_leaving`] took.
    pub fn unfill(&self) {
        let _ = std::fs::remove_file(self.mount.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}
