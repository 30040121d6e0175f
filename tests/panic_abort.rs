//! Programs built with `panic = "abort"`, as child processes: goro must say why before the
//! process dies. The fixture crate (tests/fixtures/goexit_abort) is built once with the same
//! cargo and backend feature, in a target directory of its own next to this test's.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap().parent().unwrap(); // target/
    let target = target.join("fixtures");
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/goexit_abort/Cargo.toml"
    );
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "--quiet",
        "--manifest-path",
        manifest,
        "--target-dir",
    ])
    .arg(&target);
    if cfg!(feature = "corosensei") {
        cmd.args(["--features", "corosensei"]);
    }
    let status = cmd.status().expect("run cargo build for the fixture");
    assert!(status.success(), "building the fixture failed");
    target.join("debug").join(name)
}

#[test]
fn goexit_under_panic_abort_says_why_before_it_aborts() {
    let out = Command::new(fixture("goexit_abort")).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(
        so.contains("calling goexit"),
        "stdout:\n{so}\nstderr:\n{se}"
    );
    assert!(!so.contains("unreachable"), "{so}");
    assert!(!out.status.success(), "{:?}", out.status);
    assert!(
        se.contains("goexit() needs panic = \"unwind\""),
        "no reason given; stderr:\n{se}"
    );
}
