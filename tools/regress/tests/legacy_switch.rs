//! The switch that brings the 2014 bug back must make exec-from-ramfs fail, and name the
//! ramfs that never exits; without it the same case passes.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The ramfs binary of this target directory, built first if missing.
fn ramfs() -> PathBuf {
    let tool = PathBuf::from(env!("CARGO_BIN_EXE_exec-from-ramfs"));
    let profile = tool.parent().expect("the tool's directory");
    hosted_testing::ramfs_in(profile).unwrap_or_else(|e| panic!("{e}"))
}

fn run_2014_case(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exec-from-ramfs"))
        .arg("--ramfs")
        .arg(ramfs())
        .args(["--only", "2014-bug", "--deadline", "3"])
        .args(extra)
        .output()
        .expect("run exec-from-ramfs")
}

#[test]
fn the_2014_case_passes_with_the_fix() {
    let output = run_2014_case(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("ok   2014-bug")),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 passed, 0 failed\n"), "{stdout}");
}

#[test]
fn the_legacy_switch_makes_the_2014_case_fail() {
    let output = run_2014_case(&["--legacy-image-channel"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("2014-bug"))
        .unwrap_or_else(|| panic!("no 2014-bug line in {stdout}"));
    assert!(line.starts_with("FAIL "), "{line}");
    assert!(
        line.contains("ramfs") && line.contains("still running"),
        "{line}"
    );
    assert!(line.contains("1 pinned by legacy mode"), "{line}");
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
}
