use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use federator::access::{self, RemoteAccess};
use federator::clusters::{ANNOTATION_NETWORK, ANNOTATION_REGION, ANNOTATION_ZONE};
use k8s_openapi::api::core::v1::Secret;
use kube::config::Kubeconfig;
use serde_json::{Value, json};

/// `federator cluster ...`.
#[derive(Args, Debug)]
pub(super) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Print the Secret that registers a cluster (like `istioctl create-remote-secret`):
    /// `federator cluster add --context east --create-service-account | kubectl --context
    /// config apply -f -`.
    Add(AddArgs),
}

#[derive(Args, Debug)]
struct AddArgs {
    /// Context of the cluster to register.
    #[arg(long)]
    context: Option<String>,
    /// kubeconfig to read (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Name to register the cluster under (default: the context's name).
    #[arg(long)]
    name: Option<String>,
    /// Namespace federator reads cluster Secrets from.
    #[arg(long, default_value = "federator")]
    namespace: String,
    /// Istio network of the cluster.
    #[arg(long)]
    network: Option<String>,
    /// Region override.
    #[arg(long)]
    region: Option<String>,
    /// Zone override.
    #[arg(long)]
    zone: Option<String>,
    /// Create the `federator-remote` ServiceAccount in the cluster, with only the rights
    /// federator needs (read what it watches, write Istio objects in the sync namespace), and
    /// register the cluster with its token instead of the context's own credentials.
    #[arg(long, conflicts_with = "use_service_account")]
    create_service_account: bool,
    /// Register the cluster with the token of a `federator-remote` ServiceAccount that is
    /// already there (the Helm chart's `remote` mode): only reads its token Secret.
    #[arg(long)]
    use_service_account: bool,
    /// The sync namespace federator writes to in the cluster (as `federator run
    /// --sync-namespace`); the ServiceAccount lives there.
    #[arg(
        long,
        default_value = "federator-sync",
        env = "FEDERATOR_SYNC_NAMESPACE"
    )]
    sync_namespace: String,
}

pub(super) fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ClusterCommand::Add(add) => {
            let kubeconfig = match &add.kubeconfig {
                Some(path) => Kubeconfig::read_from(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => Kubeconfig::read().context("reading the default kubeconfig")?,
            };
            // Checked before anything is created in the cluster.
            cluster_name(&kubeconfig, &add)?;
            let token = if add.create_service_account || add.use_service_account {
                Some(service_account_token(&kubeconfig, &add)?)
            } else {
                None
            };
            let secret = secret_for(&kubeconfig, &add, token.as_deref())?;
            print!("{}", serde_saphyr::to_string(&secret)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The context to register: `--context`, else the kubeconfig's current one.
fn context_name(kubeconfig: &Kubeconfig, args: &AddArgs) -> anyhow::Result<String> {
    args.context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .context("no --context given and the kubeconfig has no current context")
}

/// The name the cluster is registered under: `--name`, else the context's name; it must be a
/// DNS label.
fn cluster_name(kubeconfig: &Kubeconfig, args: &AddArgs) -> anyhow::Result<String> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => context_name(kubeconfig, args)?,
    };
    federator::model::validate_dns_label(&name)
        .map_err(|r| anyhow::anyhow!("{name:?} cannot be a cluster name ({r}); pass --name"))?;
    Ok(name)
}

/// Creates (or, with `--use-service-account`, only finds) the `federator-remote`
/// ServiceAccount in the context's cluster and returns its token.
fn service_account_token(kubeconfig: &Kubeconfig, args: &AddArgs) -> anyhow::Result<String> {
    let context = context_name(kubeconfig, args)?;
    federator::model::validate_dns_label(&args.sync_namespace)
        .map_err(|r| anyhow::anyhow!("--sync-namespace {:?}: {r}", args.sync_namespace))?;
    let access = RemoteAccess {
        sync_namespace: args.sync_namespace.clone(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let options = kube::config::KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
            .await
            .with_context(|| format!("context {context:?}"))?;
        let client = kube::Client::try_from(config)?;
        let token = if args.create_service_account {
            access::provision(&client, &context, &access).await?
        } else {
            access::read_token(&client, &context, &access).await?
        };
        eprintln!(
            "registering {context} with ServiceAccount {}/{}",
            args.sync_namespace,
            access::REMOTE_ACCOUNT
        );
        Ok(token)
    })
}

/// A Secret holding a self-contained kubeconfig for one context: only that context, its
/// cluster and user (or, given `token`, the `federator-remote` ServiceAccount's token),
/// with every file reference inlined (the Secret must work elsewhere).
fn secret_for(
    kubeconfig: &Kubeconfig,
    args: &AddArgs,
    token: Option<&str>,
) -> anyhow::Result<Secret> {
    let context_name = context_name(kubeconfig, args)?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .with_context(|| format!("context {context_name:?} not found in the kubeconfig"))?;
    let inner = context
        .context
        .as_ref()
        .with_context(|| format!("context {context_name:?} is empty"))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == inner.cluster)
        .with_context(|| {
            format!(
                "cluster {:?} of context {context_name:?} not found",
                inner.cluster
            )
        })?;
    let mut user_name = inner.user.clone().unwrap_or_default();
    let user = kubeconfig.auth_infos.iter().find(|u| u.name == user_name);
    let mut cluster_json = serde_json::to_value(cluster)?;
    inline(
        &mut cluster_json["cluster"],
        "certificate-authority",
        "certificate-authority-data",
        true,
    )?;
    let mut users = Vec::new();
    if let Some(token) = token {
        user_name = access::REMOTE_ACCOUNT.to_owned();
        users.push(json!({"name": user_name, "user": {"token": token}}));
    } else if let Some(user) = user {
        let mut user_json = serde_json::to_value(user)?;
        let auth = &mut user_json["user"];
        inline(auth, "client-certificate", "client-certificate-data", true)?;
        inline(auth, "client-key", "client-key-data", true)?;
        inline(auth, "tokenFile", "token", false)?;
        users.push(user_json);
    }
    let name = cluster_name(kubeconfig, args)?;
    let flattened = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_json],
        "users": users,
        "contexts": [{"name": name, "context": {"cluster": cluster.name, "user": user_name}}],
        "current-context": name,
    });
    let text = serde_saphyr::to_string(&flattened)?;
    if let Ok(parsed) = Kubeconfig::from_yaml(&text)
        && let Some(refused) = federator::clusters::refusal(&parsed, &Default::default())
    {
        eprintln!("warning: federator will refuse this Secret: {refused}");
    }
    let mut annotations = serde_json::Map::new();
    for (key, value) in [
        (ANNOTATION_NETWORK, &args.network),
        (ANNOTATION_REGION, &args.region),
        (ANNOTATION_ZONE, &args.zone),
    ] {
        if let Some(v) = value {
            annotations.insert(key.into(), v.clone().into());
        }
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": format!("cluster-{name}"),
            "namespace": args.namespace,
            "labels": {"federator.io/cluster": "true"},
            "annotations": annotations,
        },
        "type": "Opaque",
        "stringData": {name: text},
    }))?)
}

/// Replaces a file reference with the file's content (base64 for `*-data` fields).
fn inline(object: &mut Value, file_key: &str, data_key: &str, base64: bool) -> anyhow::Result<()> {
    let Some(map) = object.as_object_mut() else {
        return Ok(());
    };
    let Some(Value::String(path)) = map.remove(file_key) else {
        return Ok(());
    };
    if map.contains_key(data_key) {
        return Ok(());
    }
    let bytes =
        std::fs::read(Path::new(&path)).with_context(|| format!("reading {file_key} {path}"))?;
    let value = if base64 {
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    } else {
        match String::from_utf8(bytes) {
            Ok(s) => s.trim().to_owned(),
            Err(_) => bail!("{file_key} {path} is not text"),
        }
    };
    map.insert(data_key.into(), value.into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cluster add --context <context>` with every other flag at its default.
    fn add_args(context: &str) -> AddArgs {
        AddArgs {
            context: Some(context.into()),
            kubeconfig: None,
            name: None,
            namespace: "federator".into(),
            network: None,
            region: None,
            zone: None,
            create_service_account: false,
            use_service_account: false,
            sync_namespace: "federator-sync".into(),
        }
    }

    #[test]
    fn the_secret_carries_one_self_contained_context() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, content: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            path.display().to_string()
        };
        let ca = file("ca.crt", "CA-PEM");
        let cert = file("client.crt", "CERT-PEM");
        let key = file("client.key", "KEY-PEM");
        let kubeconfig = Kubeconfig::from_yaml(&format!(
            "apiVersion: v1
kind: Config
clusters:
- {{name: east-cluster, cluster: {{server: 'https://east.example:6443', certificate-authority: {ca}}}}}
- {{name: other, cluster: {{server: 'https://other.example'}}}}
users:
- {{name: east-admin, user: {{client-certificate: {cert}, client-key: {key}}}}}
- {{name: other-user, user: {{token: secret-of-other}}}}
contexts:
- {{name: east, context: {{cluster: east-cluster, user: east-admin}}}}
- {{name: other, context: {{cluster: other, user: other-user}}}}
current-context: other
"
        ))
        .unwrap();
        let mut args = add_args("east");
        args.network = Some("net-east".into());
        let secret = secret_for(&kubeconfig, &args, None).unwrap();
        assert_eq!(secret.metadata.name.as_deref(), Some("cluster-east"));
        assert_eq!(
            secret.metadata.labels.unwrap()["federator.io/cluster"],
            "true"
        );
        assert_eq!(
            secret.metadata.annotations.unwrap()[ANNOTATION_NETWORK],
            "net-east"
        );
        let text = &secret.string_data.unwrap()["east"];
        let flat = Kubeconfig::from_yaml(text).unwrap();
        assert_eq!(flat.contexts.len(), 1);
        assert_eq!(flat.current_context.as_deref(), Some("east"));
        let cluster = flat.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://east.example:6443"));
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(b64("CA-PEM").as_str())
        );
        assert!(
            cluster.certificate_authority.is_none(),
            "no file references left"
        );
        let user = flat.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            user.client_certificate_data.as_deref(),
            Some(b64("CERT-PEM").as_str())
        );
        assert!(
            !text.contains("secret-of-other"),
            "other contexts' credentials stay out"
        );
    }

    #[test]
    fn with_a_service_account_token_the_secret_carries_only_that_token() {
        let kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1
kind: Config
clusters: [{name: east, cluster: {server: 'https://east.example:6443', certificate-authority-data: Q0E=}}]
users: [{name: admin, user: {token: admin-secret}}]
contexts: [{name: east, context: {cluster: east, user: admin}}]
",
        )
        .unwrap();
        let mut args = add_args("east");
        args.create_service_account = true;
        let secret = secret_for(&kubeconfig, &args, Some("remote-token")).unwrap();
        let text = &secret.string_data.unwrap()["east"];
        assert!(
            !text.contains("admin-secret"),
            "the admin's token stays out"
        );
        let flat = Kubeconfig::from_yaml(text).unwrap();
        let user = &flat.auth_infos[0];
        assert_eq!(user.name, "federator-remote");
        let token = user.auth_info.as_ref().unwrap().token.as_ref().unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(token), "remote-token");
        let context = flat.contexts[0].context.as_ref().unwrap();
        assert_eq!(context.user.as_deref(), Some("federator-remote"));
    }

    #[test]
    fn an_unknown_context_is_a_clear_error() {
        let kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n",
        )
        .unwrap();
        let args = add_args("nope");
        let err = secret_for(&kubeconfig, &args, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("context \"nope\" not found"), "{err}");
    }
}
