//! Long-running child services tied to the lifetime of the test process.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// A running child process.
#[derive(Debug, Clone)]
pub struct Service {
    pub pid: u32,
    exited: Arc<AtomicBool>,
}

impl Service {
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::SeqCst)
    }

    /// Sends `signal` and waits up to `timeout` for the process to end.
    pub fn stop(&self, signal: i32, timeout: Duration) {
        // SAFETY: kill(2) with a pid we spawned and still own (reaped only by our thread).
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        let deadline = Instant::now() + timeout;
        while !self.has_exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends the process group this service leads (spawned with `process_group(0)`): SIGTERM,
    /// up to `timeout` for the leader to end, then SIGKILL for whatever is left of the group.
    pub fn stop_group(&self, timeout: Duration) {
        let group = -(self.pid as libc::pid_t);
        // SAFETY: kill(2) on the process group our own child leads.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while !self.has_exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
    }
}

/// Spawns `command` from a dedicated thread that waits for it, with `death_signal` delivered to
/// the child if this process dies (PR_SET_PDEATHSIG fires when the spawning thread ends, so that
/// thread must outlive the child).
pub fn spawn(mut command: Command, death_signal: i32) -> std::io::Result<Service> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let exited = Arc::new(AtomicBool::new(false));
    let flag = exited.clone();
    std::thread::spawn(move || match command.spawn() {
        Ok(mut child) => {
            let _ = sender.send(Ok(child.id()));
            let _ = child.wait();
            flag.store(true, Ordering::SeqCst);
        }
        Err(e) => {
            let _ = sender.send(Err(e));
        }
    });
    let pid = receiver.recv().map_err(std::io::Error::other)??;
    Ok(Service { pid, exited })
}

type Cleanup = Box<dyn FnOnce() + Send>;
static CLEANUPS: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());
static REGISTER_AT_EXIT: Once = Once::new();

extern "C" fn run_cleanups() {
    let cleanups = match CLEANUPS.lock() {
        Ok(mut guard) => std::mem::take(&mut *guard),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    for cleanup in cleanups.into_iter().rev() {
        cleanup();
    }
}

/// Runs `cleanup` when the process exits normally.
pub fn at_exit(cleanup: impl FnOnce() + Send + 'static) {
    REGISTER_AT_EXIT.call_once(|| {
        // SAFETY: registering a plain extern "C" function with no arguments.
        unsafe { libc::atexit(run_cleanups) };
    });
    if let Ok(mut guard) = CLEANUPS.lock() {
        guard.push(Box::new(cleanup));
    }
}

/// A fresh directory `<tmp>/<kind>-<pid>-<random>`, after removing those of dead processes.
pub fn fresh_dir(kind: &str) -> PathBuf {
    let tmp = std::env::temp_dir();
    sweep_dead(&tmp, kind);
    let dir = tmp.join(format!(
        "{kind}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("create harness temp dir");
    dir
}

fn sweep_dead(tmp: &Path, kind: &str) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&format!("{kind}-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A free TCP port on loopback (another process may still take it: callers retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
