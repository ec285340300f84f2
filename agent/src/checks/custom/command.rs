//! Running a user-defined check's command: an argument list (no shell), an empty
//! environment but for `PATH` and `LC_ALL=C`, no stdin, stdout captured up to a cap (the rest
//! drained and dropped so the program never blocks on a full pipe), stderr discarded, and a
//! deadline after which the whole process group is killed.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub status: Option<i32>,
    /// Standard output (invalid UTF-8 replaced), at most the cap.
    pub stdout: String,
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {secs} s and was killed")]
    Timeout { program: String, secs: u64 },
    #[error("waiting for {program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

/// How often the deadline is checked.
const POLL: Duration = Duration::from_millis(5);
/// How long to wait for the output after the process exits (a detached grandchild may keep
/// the pipe open; its output is then not waited for).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Runs `argv` with a deadline and an output cap.
pub fn run(argv: &[String], timeout: Duration, max_bytes: usize) -> Result<Output, CommandError> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut child = Command::new(&program)
        .args(argv.iter().skip(1))
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| CommandError::Spawn {
            program: program.clone(),
            source,
        })?;
    let (tx, rx) = mpsc::channel();
    if let Some(mut stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut truncated = false;
            let mut buf = [0u8; 8192];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = max_bytes.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                        truncated |= n > room;
                    }
                }
            }
            let _ = tx.send((kept, truncated));
        });
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::Timeout {
                    program,
                    secs: timeout.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(source) => {
                kill_group(child.id());
                let _ = child.kill();
                return Err(CommandError::Wait { program, source });
            }
        }
    };
    // Children the command left behind in its group go with it.
    kill_group(child.id());
    let (bytes, truncated) = rx.recv_timeout(DRAIN_GRACE).unwrap_or_default();
    Ok(Output {
        status: status.code(),
        stdout: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    })
}

fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // The group may already be gone: nothing to do then.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn output_exit_code_and_environment() {
        let o = run(
            &argv(&["/bin/sh", "-c", "echo hello; echo $HOME; exit 3"]),
            Duration::from_secs(5),
            1024,
        )
        .unwrap();
        assert_eq!(o.status, Some(3));
        assert_eq!(
            o.stdout, "hello\n\n",
            "the environment is empty but for PATH and LC_ALL"
        );
        assert!(!o.truncated);
    }

    #[test]
    fn output_is_capped_and_the_rest_drained() {
        let o = run(
            &argv(&["/bin/sh", "-c", "head -c 1000000 /dev/zero; echo done >&2"]),
            Duration::from_secs(10),
            100,
        )
        .unwrap();
        assert_eq!(o.status, Some(0), "the writer did not block on a full pipe");
        assert_eq!(o.stdout.len(), 100);
        assert!(o.truncated);
    }

    #[test]
    fn a_hanging_command_and_its_children_are_killed() {
        // The background `sleep` keeps the pipe open: killing the group is what ends it.
        let e = run(
            &argv(&["/bin/sh", "-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(300),
            1024,
        )
        .unwrap_err();
        assert!(matches!(e, CommandError::Timeout { .. }), "{e}");
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let e = run(&argv(&["/nonexistent/program"]), Duration::from_secs(1), 10).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot start /nonexistent/program: "),
            "{e}"
        );
    }
}
