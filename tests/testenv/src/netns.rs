//! A private network namespace for tests that need addresses other than loopback: the API
//! server refuses loopback addresses in EndpointSlices, so meshed "pods" need real-looking
//! addresses. The test re-runs itself inside a fresh network namespace (`unshare --net`)
//! whose loopback device carries a whole private range, so every address in it is local to
//! that namespace and no packet can leave it.

use std::process::Command;

/// Set in the re-run test's environment; its value is the range on its loopback device.
const INSIDE: &str = "FEDERATOR_TEST_NETNS";

/// Runs test `name` (the full path libtest prints, e.g. `federated_config_routes`) again in
/// a private network namespace whose loopback device holds `range` (say `10.244.0.0/16`).
///
/// Returns `true` in the re-run, once the namespace is set up: the caller then does the
/// test. Returns `false` in the outer run after the re-run passed; panics if it failed or
/// could not start (the message says why), so nothing is skipped silently.
pub fn rerun_in_private_network(name: &str, range: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        // Only ever in a namespace of our own: never add the range to the machine's loopback.
        let own = std::fs::read_link("/proc/self/ns/net").ok();
        let machine = std::fs::read_link("/proc/1/ns/net").ok();
        assert!(
            own.is_some() && own != machine,
            "{INSIDE} is set but this is not a private network namespace ({own:?}); unset it"
        );
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", range, "dev", "lo"],
        ] {
            let status = Command::new("ip").args(&args).status();
            assert!(
                status.as_ref().is_ok_and(|s| s.success()),
                "ip {}: {status:?} (the iproute2 package provides ip)",
                args.join(" ")
            );
        }
        return true;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("locating the test binary: {e}"));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = Command::new("unshare");
    // --kill-child: the re-run (and the processes it started) dies with unshare.
    command.args(["--net", "--fork", "--kill-child"]);
    if !root {
        // Unprivileged: a user namespace maps us to root inside.
        command.arg("--map-root-user");
    }
    let status = command
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, range)
        .status()
        .unwrap_or_else(|e| panic!("running unshare (util-linux) for {name}: {e}"));
    assert!(
        status.success(),
        "{name} failed in its network namespace: {status}"
    );
    false
}
