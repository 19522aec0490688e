//! Running the `hookserver` binary from a test: a clean environment (only what the
//! test gives), its exit code and output.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `hookserver ARGS` with only `env` set (no proxies, no stray configuration),
/// on the blocking pool so that servers on the test's runtime keep serving.
pub async fn hookserver(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookserver"))
            .args(&args)
            .env_clear()
            .envs(env)
            .output()
            .expect("run hookserver");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    })
    .await
    .expect("the run's thread")
}

/// A file holding `contents` in a fresh temp dir.
pub fn file(name: &str, contents: &str) -> PathBuf {
    let path = tests::journal::temp_dir("cli").join(name);
    std::fs::write(&path, contents).expect("write the payload file");
    path
}
