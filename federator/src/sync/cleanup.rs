//! `--cleanup-on-remove`: when a cluster is unregistered, what this installation wrote in
//! its sync namespace is deleted (while the cluster still answers), each delete conditional
//! on the object being the one just listed.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Preconditions};
use tracing::{info, warn};

use super::objects::api_resource;
use super::plan::{INSTANCE_LABEL, Kind, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Deletes this installation's objects from `namespace`; returns how many. Objects of
/// others (other installations, users) are not listed, so never deleted; nothing is deleted
/// once `fence` says this replica no longer leads.
pub async fn cleanup(
    client: kube::Client,
    namespace: &str,
    instance: &str,
    fence: &crate::leader::Fence,
) -> usize {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{INSTANCE_LABEL}={instance}");
    let mut deleted = 0;
    for kind in Kind::ALL {
        // Sidecars and ServiceImports sit in their workloads' and Services' namespaces.
        let api: Api<DynamicObject> = if kind.outside_sync_namespace() {
            Api::all_with(client.clone(), &api_resource(kind))
        } else {
            Api::namespaced_with(client.clone(), namespace, &api_resource(kind))
        };
        let listed = match super::paged::list_all(&api, &ListParams::default().labels(&selector))
            .await
        {
            Ok(listed) => listed,
            // The kind is not installed (a cluster without the MCS CRDs): nothing of it.
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(err) => {
                warn!(kind = kind.name(), namespace, error = %crate::connect::describe::kube_error(&err), "cleanup: cannot list; left as is");
                continue;
            }
        };
        for object in listed {
            if !fence.may_write() {
                info!(namespace, "cleanup: stopped, this replica no longer leads");
                return deleted;
            }
            let name = object.metadata.name.clone().unwrap_or_default();
            let in_namespace = object.metadata.namespace.as_deref().unwrap_or(namespace);
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), in_namespace, &api_resource(kind));
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: object.metadata.uid.clone(),
                    resource_version: object.metadata.resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => deleted += 1,
                Err(err) => {
                    warn!(kind = kind.name(), name, error = %crate::connect::describe::kube_error(&err), "cleanup: not deleted");
                }
            }
        }
    }
    info!(
        namespace,
        deleted, "cleanup: deleted what this installation wrote"
    );
    deleted
}
