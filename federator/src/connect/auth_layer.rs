//! Puts an exec plugin's token on every request of a cluster's client.
//!
//! The token is fetched in `poll_ready`, so a slow plugin holds up only the requests of its
//! own cluster; a failed run fails the request it was for (with [`ExecError`]'s fixed words),
//! never the client: kube's client sits behind a buffer that would stop for good on an error
//! from `poll_ready`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::Request;
use http::header::AUTHORIZATION;
use tower::{BoxError, Layer, Service};

use super::exec::{ExecError, TokenSource, bearer};

type Pending = Pin<Box<dyn Future<Output = Result<http::HeaderValue, ExecError>> + Send>>;

/// Wraps a client's service stack with [`ExecAuth`].
#[derive(Clone)]
pub(super) struct ExecAuthLayer {
    source: Arc<TokenSource>,
}

impl ExecAuthLayer {
    pub(super) fn new(source: TokenSource) -> Self {
        Self {
            source: Arc::new(source),
        }
    }
}

impl<S> Layer<S> for ExecAuthLayer {
    type Service = ExecAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ExecAuth {
            inner,
            source: self.source.clone(),
            pending: None,
            outcome: None,
        }
    }
}

/// The service: inner stack plus the token of the next request.
pub(super) struct ExecAuth<S> {
    inner: S,
    source: Arc<TokenSource>,
    pending: Option<Pending>,
    outcome: Option<Result<http::HeaderValue, ExecError>>,
}

impl<S, B> Service<Request<B>> for ExecAuth<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Either<
        futures::future::MapErr<S::Future, fn(S::Error) -> BoxError>,
        Ready<Result<S::Response, BoxError>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.outcome.is_none() {
            let source = self.source.clone();
            let pending = self.pending.get_or_insert_with(|| {
                Box::pin(async move {
                    let token = source.token().await?;
                    bearer(&token).ok_or(ExecError::NoToken)
                })
            });
            match pending.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(outcome) => {
                    self.pending = None;
                    self.outcome = Some(outcome);
                }
            }
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        use futures::TryFutureExt;
        match self.outcome.take() {
            Some(Ok(header)) => {
                request.headers_mut().insert(AUTHORIZATION, header);
                Either::Left(
                    self.inner
                        .call(request)
                        .map_err(Into::into as fn(S::Error) -> BoxError),
                )
            }
            Some(Err(error)) => Either::Right(ready(Err(Box::new(error)))),
            None => Either::Right(ready(Err(Box::new(ExecError::NoToken)))),
        }
    }
}
