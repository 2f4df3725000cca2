//! Reading a request body under a size limit. An oversized body is not simply dropped: the
//! server keeps reading (and discarding) what the client is still sending, for a while, before
//! it answers 413. Closing a connection with unread data makes the kernel reset it, and a
//! client still uploading (curl with `Expect: 100-continue`, any SDK sending a large prompt)
//! then loses the 413 and sees a broken connection instead: nginx's "lingering close".

use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::StreamExt;

use crate::error::ApiError;

/// How much of an oversized body is read and discarded at most.
const DRAIN_BYTES: usize = 64 << 20;
/// How long an oversized body is drained at most before answering anyway (a client that
/// trickles its upload gets no more of the server's time than this).
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The body's bytes, or 413 once it passes `limit` bytes (after draining the rest of it, up to
/// [`DRAIN_BYTES`] or [`DRAIN_TIME`]), or 400 when it cannot be read.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::malformed(format!("the request body could not be read: {e}")))?;
        if buf.len() + chunk.len() > limit {
            let drain = async {
                let mut drained = 0usize;
                while let Some(Ok(c)) = stream.next().await {
                    drained += c.len();
                    if drained > DRAIN_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
            return Err(ApiError::too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_up_to_the_limit_and_refuses_past_it() {
        assert_eq!(read_limited(Body::from("x".repeat(10)), 10).await.unwrap().len(), 10);
        let err = read_limited(Body::from("x".repeat(11)), 10).await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
