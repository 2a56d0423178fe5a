//! Lists in pages, so a namespace holding tens of thousands of objects is never read in one
//! response: the API server and federator each hold one page at a time.

use kube::Api;
use kube::api::ListParams;
use serde::de::DeserializeOwned;

/// Objects per page: kubectl's default chunk size.
pub const PAGE_SIZE: u32 = 500;

/// Every object `params` selects, read [`PAGE_SIZE`] at a time.
pub async fn list_all<K>(api: &Api<K>, params: &ListParams) -> Result<Vec<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    list_in_pages(api, params, PAGE_SIZE).await
}

/// Every object `params` selects, read `page_size` at a time.
pub async fn list_in_pages<K>(
    api: &Api<K>,
    params: &ListParams,
    page_size: u32,
) -> Result<Vec<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    fold_pages(api, params, page_size, Vec::new, |items, page| {
        items.extend(page);
    })
    .await
}

/// Folds every object `params` selects into what `start` makes, a page at a time, so only
/// what `add` keeps of each object outlives its page (a list of thousands of objects never
/// sits in memory whole). A continue token that expired between pages (410 Gone) restarts
/// the list from `start()`, at most twice.
pub async fn fold_pages<K, A>(
    api: &Api<K>,
    params: &ListParams,
    page_size: u32,
    start: impl Fn() -> A,
    mut add: impl FnMut(&mut A, Vec<K>),
) -> Result<A, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut attempts = 0;
    'restart: loop {
        attempts += 1;
        let mut folded = start();
        let mut page = params.clone().limit(page_size);
        loop {
            let list = match api.list(&page).await {
                Ok(list) => list,
                Err(kube::Error::Api(status)) if status.code == 410 && attempts < 3 => {
                    continue 'restart;
                }
                Err(err) => return Err(err),
            };
            add(&mut folded, list.items);
            match list.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => page = page.continue_token(&token),
                None => return Ok(folded),
            }
        }
    }
}
