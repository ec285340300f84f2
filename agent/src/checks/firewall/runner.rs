//! Running a program for its output, injectably: argument lists only (no shell), a clean
//! environment, a deadline after which the child is killed, and a cap on what is read.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Most output kept from one command.
const MAX_OUTPUT: u64 = 16 * 1024 * 1024;

/// Why a command gave no usable output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("{program}: could not start: {reason}")]
    Start { program: String, reason: String },
    #[error("{program}: still running after {timeout_ms} ms, killed")]
    Timeout { program: String, timeout_ms: u128 },
    #[error("{program}: exited with {status}: {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
}

/// Runs programs for a check. Tests inject a fake.
pub trait CommandRunner: Send + Sync + std::fmt::Debug {
    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<String, CommandError>;
}

/// The real runner.
#[derive(Debug, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<String, CommandError> {
        let start_error = |e: std::io::Error| CommandError::Start {
            program: program.to_string(),
            reason: e.to_string(),
        };
        let mut child = Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(start_error)?;
        // Readers on their own threads: a full pipe must not block the child while we wait.
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let out_reader = std::thread::spawn(move || read_capped(stdout));
        let err_reader = std::thread::spawn(move || read_capped(stderr));
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(CommandError::Timeout {
                        program: program.to_string(),
                        timeout_ms: timeout.as_millis(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(start_error(e)),
            }
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            return Err(CommandError::Failed {
                program: program.to_string(),
                status: status.to_string(),
                stderr: String::from_utf8_lossy(&err)
                    .trim()
                    .chars()
                    .take(300)
                    .collect(),
            });
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn read_capped(pipe: Option<impl Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(p) = pipe {
        let _ = p.take(MAX_OUTPUT).read_to_end(&mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_programs_with_arguments_and_deadlines() {
        let r = SystemRunner;
        assert_eq!(
            r.run("/bin/echo", &["a b", "$HOME;"], Duration::from_secs(5))
                .unwrap(),
            "a b $HOME;\n"
        );
        let err = r
            .run(
                "/bin/sh",
                &["-c", "echo oops >&2; exit 3"],
                Duration::from_secs(5),
            )
            .unwrap_err();
        assert!(
            matches!(&err, CommandError::Failed { stderr, .. } if stderr == "oops"),
            "{err}"
        );
        let err = r
            .run("/bin/sleep", &["5"], Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }));
        assert!(matches!(
            r.run("/nonexistent/x", &[], Duration::from_secs(1)),
            Err(CommandError::Start { .. })
        ));
        // The environment is clean.
        let env = r.run("/usr/bin/env", &[], Duration::from_secs(5)).unwrap();
        let mut lines: Vec<&str> = env.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
    }
}
