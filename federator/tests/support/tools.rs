//! The real command-line tools a user runs next to federator (kubectl, helm, and the
//! federator binary itself), as the end-to-end tests drive them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `program args`, writing `stdin` to it, and returns its output.
fn run(program: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Stdout of a command that must succeed (else the panic shows its stderr).
fn ok(what: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `kubectl --kubeconfig <kubeconfig> args`, with `stdin`; its raw output.
pub fn kubectl_output(kubeconfig: &Path, args: &[&str], stdin: &str) -> Output {
    let kubectl = testenv::Binaries::locate().unwrap().kubectl().unwrap();
    let config = kubeconfig.to_string_lossy().into_owned();
    let mut all = vec!["--kubeconfig", &config];
    all.extend(args);
    run(&kubectl, &all, stdin)
}

/// `kubectl`, which must succeed; its stdout.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> String {
    ok(
        &format!("kubectl {args:?}"),
        kubectl_output(kubeconfig, args, stdin),
    )
}

/// `helm args`: `Ok(stdout)` when it succeeds, `Err(stdout and stderr)` when it fails.
pub fn helm(args: &[&str]) -> Result<String, String> {
    let helm = testenv::Binaries::locate().unwrap().helm().unwrap();
    let output = run(&helm, args, "");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `helm template <release> helm/federator --namespace <namespace> extra`, without the CRDs
/// (Helm installs `crds/` on its own, before the templates). The Kubernetes version is given,
/// as a cluster would tell `helm install`.
pub fn helm_template(release: &str, namespace: &str, extra: &[&str]) -> Result<String, String> {
    let chart = super::repo_root().join("helm/federator");
    let chart = chart.to_string_lossy().into_owned();
    let mut args = vec!["template", release, &chart, "--namespace", namespace];
    args.extend(["--kube-version", testenv::KUBERNETES_VERSION]);
    args.extend(extra);
    helm(&args)
}

/// The objects of a multi-document YAML text (a rendered chart), as JSON.
pub fn documents(yaml: &str) -> Vec<serde_json::Value> {
    let documents: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("not YAML: {e}\n{yaml}"));
    documents
        .into_iter()
        .flatten()
        .filter(|d| !d.is_null())
        .collect()
}

/// The federator binary with `args`; its raw output.
pub fn federator_output(args: &[&str]) -> Output {
    run(Path::new(env!("CARGO_BIN_EXE_federator")), args, "")
}
