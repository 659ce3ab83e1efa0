//! What the CLI writes to stdout. A reader that stops reading (`backstop list --json | head`)
//! ends the command quietly, as SIGPIPE ends `cat`: exit status 141 and nothing on stderr,
//! never a panic or a message blaming the backup.

use std::io::Write;

/// The exit status of a command whose reader closed the pipe (128 + SIGPIPE).
pub const EXIT_CLOSED_PIPE: u8 = 141;

/// `println!` to stdout, through [`write_stdout`].
macro_rules! outln {
    () => {
        $crate::output::write_stdout("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to stdout, through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!($($arg)*))
    };
}

/// Writes `text` to stdout and flushes it; a closed pipe ends the process quietly, any other
/// error with one line.
pub fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(EXIT_CLOSED_PIPE));
        }
        eprintln!("error: writing to stdout failed: {error}");
        std::process::exit(1);
    }
}

/// Whether `error` is stdout's reader closing the pipe: a write to stdout itself, or the
/// export's output (a broken pipe from a store or a database is a failure like any other).
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    let closed = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    error.downcast_ref::<std::io::Error>().is_some_and(closed)
        || matches!(
            error.downcast_ref::<backstop::engine::restore::RestoreError>(),
            Some(backstop::engine::restore::RestoreError::Output { source }) if closed(source)
        )
}
