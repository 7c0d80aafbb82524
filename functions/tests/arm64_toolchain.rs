//! How `make package` chooses its aarch64 toolchain (`localstack/arm64-toolchain.sh`), run on a
//! PATH of its own with fake `rustup`, `dpkg-query`, `id`, `dpkg` and `apt-get`: rustup's route
//! when rustup has or adds aarch64-unknown-linux-gnu, Debian's otherwise (installed with apt only
//! as root), either one when `ARM64_TOOLCHAIN` forces it. Each case evaluates the script's output
//! as the Makefile's `package` recipe does and reads back the route, RUSTC and PATH the build gets.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TARGET: &str = "aarch64-unknown-linux-gnu";
const DEBS: &str = "rustc-web cargo-web libstd-rust-web-dev:arm64";

const RUSTUP_HAS_TARGET: &str = r#"case "$1 $2" in
  "target list") echo aarch64-unknown-linux-gnu; echo x86_64-unknown-linux-gnu ;;
  "show active-toolchain") echo "stable-fake (default)" ;;
  *) exit 1 ;;
esac"#;
const RUSTUP_ADDS_TARGET: &str = r#"case "$1 $2" in
  "target list") echo x86_64-unknown-linux-gnu ;;
  "target add") echo "info: downloading component rust-std" ;;
  "show active-toolchain") echo "stable-fake (default)" ;;
esac"#;
const RUSTUP_OFFLINE: &str = r#"case "$1 $2" in
  "target list") echo x86_64-unknown-linux-gnu ;;
  "target add") echo "error: could not download file" >&2; exit 1 ;;
esac"#;
const RUSTUP_HANGS: &str = r#"case "$1 $2" in
  "target list") echo x86_64-unknown-linux-gnu ;;
  "target add") exec sleep 30 ;;
esac"#;
const DEBS_INSTALLED: &str = "printf 'ii '";
const DEBS_MISSING: &str = "exit 1";

/// A machine of fakes: `bin/` is the whole PATH (the fakes, plus links to the few real tools the
/// script uses), and every fake appends its command line to `calls.log`.
struct Machine {
    dir: PathBuf,
}

struct Outcome {
    success: bool,
    /// What the Makefile's recipe gets after `eval`: ARM64_TOOLCHAIN, RUSTC and PATH.
    route: String,
    rustc: String,
    path: String,
    stderr: String,
    calls: String,
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

impl Machine {
    /// Not root, no rustup, no Debian packages, and apt that would fail.
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("arm64-toolchain-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        for tool in ["grep", "cut", "timeout", "sleep"] {
            if let Some(real) = which(tool) {
                std::os::unix::fs::symlink(real, dir.join("bin").join(tool)).unwrap();
            }
        }
        let machine = Machine { dir };
        machine.fake("id", "echo 1000");
        machine.fake("dpkg-query", DEBS_MISSING);
        machine.fake("dpkg", "exit 1");
        machine.fake("apt-get", "exit 1");
        machine
    }

    fn bin(&self) -> String {
        self.dir.join("bin").display().to_string()
    }

    fn fake(&self, name: &str, body: &str) -> &Self {
        let path = self.dir.join("bin").join(name);
        let log = self.dir.join("calls.log");
        let script = format!(
            "#!/bin/sh\necho \"{name} $*\" >> '{}'\n{body}\n",
            log.display()
        );
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Runs the script as `make package` does, with only PATH, HOME and `env` set.
    fn run(&self, env: &[(&str, &str)]) -> Outcome {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../localstack/arm64-toolchain.sh");
        let recipe = r#"toolchain="$(/bin/sh "$1")" || exit $?
eval "$toolchain"
echo "route=$ARM64_TOOLCHAIN"
echo "rustc=${RUSTC:-}"
echo "path=$PATH""#;
        let output = Command::new("/bin/sh")
            .args(["-c", recipe, "sh"])
            .arg(script)
            .env_clear()
            .env("PATH", self.bin())
            .env("HOME", &self.dir)
            .envs(env.iter().copied())
            .output()
            .expect("/bin/sh runs");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_string()
        };
        Outcome {
            success: output.status.success(),
            route: field("route"),
            rustc: field("rustc"),
            path: field("path"),
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
            calls: fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default(),
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn assert_called(outcome: &Outcome, command: &str, called: bool) {
    let calls = &outcome.calls;
    assert_eq!(
        calls.contains(command),
        called,
        "{command:?} in the calls:\n{calls}"
    );
}

fn assert_said(outcome: &Outcome, words: &str, said: bool) {
    let stderr = &outcome.stderr;
    assert_eq!(
        stderr.contains(words),
        said,
        "{words:?} on stderr:\n{stderr}"
    );
}

/// The rustup route leaves cargo and rustc to rustup: no RUSTC, PATH as it was.
fn assert_rustup_route(machine: &Machine, outcome: &Outcome) {
    assert!(outcome.success, "{}", outcome.stderr);
    assert_eq!(outcome.route, "rustup", "{}", outcome.stderr);
    assert_eq!(outcome.rustc, "");
    assert_eq!(outcome.path, machine.bin());
    assert_called(outcome, "dpkg", false);
}

/// The Debian route: Debian's rustc, and /usr/bin (its cargo) first on PATH.
fn assert_debian_route(machine: &Machine, outcome: &Outcome) {
    assert!(outcome.success, "{}", outcome.stderr);
    assert_eq!(outcome.route, "debian", "{}", outcome.stderr);
    assert_eq!(outcome.rustc, "/usr/bin/rustc");
    assert_eq!(outcome.path, format!("/usr/bin:{}", machine.bin()));
}

#[test]
fn rustup_with_the_target_installed_is_used_as_it_is() {
    let machine = Machine::new("installed");
    machine.fake("rustup", RUSTUP_HAS_TARGET);
    let outcome = machine.run(&[]);
    assert_rustup_route(&machine, &outcome);
    assert_called(&outcome, "rustup target add", false);
}

#[test]
fn rustup_that_can_add_the_target_is_chosen_over_installed_debian_packages() {
    let machine = Machine::new("adds");
    machine
        .fake("rustup", RUSTUP_ADDS_TARGET)
        .fake("dpkg-query", DEBS_INSTALLED);
    let outcome = machine.run(&[]);
    assert_rustup_route(&machine, &outcome);
    assert_called(&outcome, &format!("rustup target add {TARGET}"), true);
    assert_said(&outcome, "info: downloading", false);
}

#[test]
fn rustup_that_cannot_add_the_target_falls_back_to_debian_quietly() {
    let machine = Machine::new("offline");
    machine
        .fake("rustup", RUSTUP_OFFLINE)
        .fake("dpkg-query", DEBS_INSTALLED);
    let outcome = machine.run(&[]);
    assert_debian_route(&machine, &outcome);
    assert_said(&outcome, "falling back to Debian's Rust", true);
    assert_said(&outcome, "could not download", false);
}

#[test]
fn a_hanging_rustup_is_cut_off_by_the_timeout() {
    let machine = Machine::new("hangs");
    if !machine.dir.join("bin/timeout").exists() {
        eprintln!("no timeout(1) on this machine: skipped");
        return;
    }
    machine
        .fake("rustup", RUSTUP_HANGS)
        .fake("dpkg-query", DEBS_INSTALLED);
    let started = Instant::now();
    let outcome = machine.run(&[("ARM64_RUSTUP_TIMEOUT", "1")]);
    assert_debian_route(&machine, &outcome);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn without_rustup_the_installed_debian_packages_are_used() {
    let machine = Machine::new("no-rustup");
    machine.fake("dpkg-query", DEBS_INSTALLED);
    let outcome = machine.run(&[]);
    assert_debian_route(&machine, &outcome);
    assert_said(&outcome, "falling back", false);
    assert_called(&outcome, "apt-get", false);
}

#[test]
fn root_installs_the_debian_packages_with_apt_keeping_stdout_for_the_assignments() {
    let machine = Machine::new("root");
    machine
        .fake("id", "echo 0")
        .fake("dpkg", "exit 0")
        .fake("apt-get", "echo apt-get says hello");
    let outcome = machine.run(&[]);
    assert_debian_route(&machine, &outcome);
    assert_called(&outcome, "dpkg --add-architecture arm64", true);
    assert_called(&outcome, "apt-get update", true);
    assert_called(&outcome, &format!("apt-get install -y {DEBS}"), true);
    assert_said(&outcome, "apt-get says hello", true);
    assert_said(&outcome, "not found", false);
}

#[test]
fn with_neither_route_it_names_both_and_fails_without_trying_apt() {
    let machine = Machine::new("none");
    machine.fake("rustup", RUSTUP_OFFLINE);
    let outcome = machine.run(&[]);
    assert!(!outcome.success);
    assert_said(&outcome, &format!("rustup target add {TARGET}"), true);
    assert_said(&outcome, &format!("apt-get install -y {DEBS}"), true);
    assert_called(&outcome, "apt-get", false);
}

#[test]
fn arm64_toolchain_debian_skips_a_working_rustup() {
    let machine = Machine::new("forced-debian");
    machine
        .fake("rustup", RUSTUP_ADDS_TARGET)
        .fake("dpkg-query", DEBS_INSTALLED);
    let outcome = machine.run(&[("ARM64_TOOLCHAIN", "debian")]);
    assert_debian_route(&machine, &outcome);
    assert_called(&outcome, "rustup", false);
}

#[test]
fn arm64_toolchain_rustup_fails_rather_than_falling_back() {
    let machine = Machine::new("forced-rustup");
    machine
        .fake("rustup", RUSTUP_OFFLINE)
        .fake("dpkg-query", DEBS_INSTALLED);
    let outcome = machine.run(&[("ARM64_TOOLCHAIN", "rustup")]);
    assert!(!outcome.success);
    assert_said(&outcome, "ARM64_TOOLCHAIN=rustup", true);
    assert_called(&outcome, "dpkg-query", false);

    let outcome = machine.run(&[("ARM64_TOOLCHAIN", "zig")]);
    assert!(!outcome.success);
    assert_said(&outcome, "rustup or debian", true);
}
