//! A small etcd v3 client over tonic (the generated `etcdserverpb` stubs): a channel across
//! the endpoints, optional TLS, and the few calls the store and the election make.

use std::path::PathBuf;
use std::time::Duration;

use prost::Message as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{EtcdTraffic, pb};

/// How to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// Keys live under this prefix (one installation's).
    pub prefix: String,
    /// TLS: the CA that signed etcd's certificate (TLS is on when set).
    pub ca_file: Option<PathBuf>,
    /// TLS client certificate and key (mutual TLS), PEM.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Why etcd could not be reached or answered badly.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// A TLS file cannot be read.
    #[error("reading {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An endpoint is not `host:port`, or TLS cannot be set up.
    #[error("etcd endpoint {endpoint}: {reason}")]
    Endpoint {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A watch was refused or ended.
    #[error("etcd watch of {range}: {reason}")]
    Watch {
        /// The keys watched.
        range: String,
        /// Why.
        reason: String,
    },
    /// A request failed.
    #[error("etcd {call}: {status}")]
    Call {
        /// Which call.
        call: &'static str,
        /// gRPC status code and message.
        status: String,
    },
}

/// Connected (lazily) to etcd.
#[derive(Clone)]
pub struct EtcdClient {
    channel: Channel,
    /// The endpoints, for messages.
    pub endpoints: String,
    /// Where requests and bytes are counted.
    traffic: EtcdTraffic,
}

/// Each request's time limit.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Keys per page of a listing.
const LIST_PAGE: i64 = 1000;

impl EtcdClient {
    /// A client for `options`: nothing is dialled until the first request, so an etcd down
    /// at start-up is an error of each request (retried), not of the process.
    pub fn new(options: &EtcdOptions) -> Result<Self, EtcdError> {
        let tls = match &options.ca_file {
            None => None,
            Some(ca) => {
                let mut tls =
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
                if let Some((cert, key)) = &options.client_cert {
                    tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
                }
                Some(tls)
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoints = Vec::new();
        for address in &options.endpoints {
            let bad = |reason: String| EtcdError::Endpoint {
                endpoint: address.clone(),
                reason,
            };
            let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
                .map_err(|e| bad(e.to_string()))?
                .connect_timeout(TIMEOUT)
                .timeout(TIMEOUT)
                .tcp_nodelay(true)
                // A long watch on a member that went silent fails instead of waiting forever.
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true);
            if let Some(tls) = &tls {
                endpoint = endpoint
                    .tls_config(tls.clone())
                    .map_err(|e| bad(e.to_string()))?;
            }
            endpoints.push(endpoint);
        }
        if endpoints.is_empty() {
            return Err(EtcdError::Endpoint {
                endpoint: String::new(),
                reason: "no endpoint given".into(),
            });
        }
        Ok(Self {
            channel: Channel::balance_list(endpoints.into_iter()),
            endpoints: options.endpoints.join(","),
            traffic: EtcdTraffic::default(),
        })
    }

    /// The same client, counting its requests and bytes into `traffic`.
    pub fn counted(mut self, traffic: EtcdTraffic) -> Self {
        self.traffic = traffic;
        self
    }

    /// Where this client counts its requests and bytes.
    pub(super) fn traffic(&self) -> &EtcdTraffic {
        &self.traffic
    }

    /// Counts a unary call: its request before, its answer after.
    async fn counted_call<Q: prost::Message, A: prost::Message>(
        &self,
        call: &'static str,
        request: Q,
        send: impl AsyncFnOnce(Q) -> Result<tonic::Response<A>, tonic::Status>,
    ) -> Result<A, EtcdError> {
        self.traffic.request(call, request.encoded_len());
        let answer = send(request).await.map_err(failed(call))?.into_inner();
        self.traffic.answer(call, answer.encoded_len());
        Ok(answer)
    }

    /// The channel to etcd, for the calls of sibling modules.
    pub(super) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    fn kv(&self) -> pb::kv_client::KvClient<Channel> {
        pb::kv_client::KvClient::new(self.channel.clone())
    }

    fn lease(&self) -> pb::lease_client::LeaseClient<Channel> {
        pb::lease_client::LeaseClient::new(self.channel.clone())
    }

    /// A range read.
    pub async fn range(&self, request: pb::RangeRequest) -> Result<pb::RangeResponse, EtcdError> {
        let mut kv = self.kv();
        self.counted_call("Range", request, async |r| kv.range(r).await)
            .await
    }

    /// A transaction.
    pub async fn txn(&self, request: pb::TxnRequest) -> Result<pb::TxnResponse, EtcdError> {
        let mut kv = self.kv();
        self.counted_call("Txn", request, async |r| kv.txn(r).await)
            .await
    }

    /// Every key under `prefix`, read a page at a time at one revision (one consistent
    /// listing, whatever is written meanwhile, and no answer past gRPC's size limit); the
    /// revision.
    pub async fn list_prefix(&self, prefix: &str) -> Result<(Vec<pb::KeyValue>, i64), EtcdError> {
        let end = prefix_end(prefix.as_bytes());
        let mut from = prefix.as_bytes().to_vec();
        let mut revision = 0;
        let mut all = Vec::new();
        loop {
            let page = self
                .range(pb::RangeRequest {
                    key: from.clone(),
                    range_end: end.clone(),
                    limit: LIST_PAGE,
                    revision,
                    ..Default::default()
                })
                .await?;
            if revision == 0 {
                revision = page.header.as_ref().map_or(0, |h| h.revision);
            }
            let more = page.more;
            if let Some(last) = page.kvs.last() {
                // The next page starts just after the last key.
                from = last.key.clone();
                from.push(0);
            }
            all.extend(page.kvs);
            if !more {
                return Ok((all, revision));
            }
        }
    }

    /// Writes `key` under `lease` if no such key exists; the revision of the write, or `None`
    /// when the key exists.
    pub async fn create_leased(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<Option<i64>, EtcdError> {
        let answer = self
            .txn(pb::TxnRequest {
                compare: vec![pb::Compare {
                    result: pb::compare::CompareResult::Equal as i32,
                    target: pb::compare::CompareTarget::Create as i32,
                    key: key.as_bytes().to_vec(),
                    target_union: Some(pb::compare::TargetUnion::CreateRevision(0)),
                    range_end: Vec::new(),
                }],
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: key.as_bytes().to_vec(),
                        value,
                        lease,
                        ..Default::default()
                    })),
                }],
                failure: Vec::new(),
            })
            .await?;
        Ok(answer
            .succeeded
            .then(|| answer.header.map_or(0, |h| h.revision)))
    }

    /// A new lease of `ttl` seconds; its ID.
    pub async fn grant(&self, ttl: i64) -> Result<i64, EtcdError> {
        let mut lease = self.lease();
        let request = pb::LeaseGrantRequest { ttl, id: 0 };
        let answer = self
            .counted_call("LeaseGrant", request, async |r| lease.lease_grant(r).await)
            .await?;
        if !answer.error.is_empty() {
            return Err(EtcdError::Call {
                call: "LeaseGrant",
                status: answer.error,
            });
        }
        if answer.ttl < ttl {
            // Keys under it would go before the holder's term ends.
            return Err(EtcdError::Call {
                call: "LeaseGrant",
                status: format!(
                    "granted a TTL of {} s, less than the {ttl} s asked",
                    answer.ttl
                ),
            });
        }
        Ok(answer.id)
    }

    /// Keeps lease `id` alive once; the seconds it has left (0 or less: it is gone).
    pub async fn keep_alive(&self, id: i64) -> Result<i64, EtcdError> {
        let request = pb::LeaseKeepAliveRequest { id };
        self.traffic
            .request("LeaseKeepAlive", request.encoded_len());
        let requests = futures::stream::iter([request]);
        let mut answers = self
            .lease()
            .lease_keep_alive(requests)
            .await
            .map_err(failed("LeaseKeepAlive"))?
            .into_inner();
        match answers.message().await.map_err(failed("LeaseKeepAlive"))? {
            Some(answer) => {
                self.traffic.answer("LeaseKeepAlive", answer.encoded_len());
                Ok(answer.ttl)
            }
            // No answer is no news of the lease: a failed renewal, not an expired lease.
            None => Err(EtcdError::Call {
                call: "LeaseKeepAlive",
                status: "the stream ended without an answer".into(),
            }),
        }
    }

    /// Ends lease `id` (its keys go with it).
    pub async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        let mut lease = self.lease();
        let request = pb::LeaseRevokeRequest { id };
        self.counted_call("LeaseRevoke", request, async |r| {
            lease.lease_revoke(r).await
        })
        .await
        .map(|_| ())
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::File {
        path: path.clone(),
        source,
    })
}

pub(super) fn failed(call: &'static str) -> impl Fn(tonic::Status) -> EtcdError {
    move |status| EtcdError::Call {
        call,
        status: format!("{:?}: {}", status.code(), status.message()),
    }
}

/// The end of the range of keys starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: to the end of the key space.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
    }
}
