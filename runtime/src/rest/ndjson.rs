//! Newline-delimited JSON on the wire: splitting a byte stream into lines, each bounded.

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tonic::Status;

use super::status::with_http_status;

/// Splits a byte stream into non-blank lines. A line longer than `max_line` bytes (newline not
/// counted) ends the stream with RESOURCE_EXHAUSTED (HTTP 413): the buffer never grows past
/// `max_line` plus one chunk, however long the stream runs or however long a line without a
/// newline is.
pub(crate) fn lines<S>(stream: S, max_line: usize) -> impl Stream<Item = Result<Bytes, Status>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, Status>> + Send + 'static,
{
    futures_util::stream::unfold(
        (Box::pin(stream), BytesMut::new(), false, 0usize),
        move |(mut stream, mut buf, mut done, mut scanned)| async move {
            loop {
                // Only the bytes not looked at yet are searched for a newline.
                if let Some(pos) = buf[scanned..].iter().position(|b| *b == b'\n') {
                    let line = buf.split_to(scanned + pos + 1).freeze();
                    scanned = 0;
                    let line = line.slice(..line.len() - 1);
                    if line.len() > max_line {
                        return Some((Err(too_long(max_line)), (stream, BytesMut::new(), true, 0)));
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some((Ok(line), (stream, buf, done, scanned)));
                }
                scanned = buf.len();
                if buf.len() > max_line {
                    return Some((Err(too_long(max_line)), (stream, BytesMut::new(), true, 0)));
                }
                if done {
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    let rest = buf.split().freeze();
                    return Some((Ok(rest), (stream, buf, done, 0)));
                }
                match stream.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        return Some((Err(e), (stream, BytesMut::new(), true, 0)));
                    }
                    None => done = true,
                }
            }
        },
    )
    .scan(false, |ended, item: Result<Bytes, Status>| {
        // Nothing after an error.
        if *ended {
            return futures_util::future::ready(None);
        }
        *ended = item.is_err();
        futures_util::future::ready(Some(item))
    })
}

fn too_long(max_line: usize) -> Status {
    let status = Status::resource_exhausted(format!("a stream message is larger than {max_line} bytes"));
    with_http_status(status, http::StatusCode::PAYLOAD_TOO_LARGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn split(chunks: &[&'static [u8]], max: usize) -> Vec<Result<Bytes, tonic::Code>> {
        let s = futures_util::stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>());
        lines(s, max).map(|r| r.map_err(|s| s.code())).collect().await
    }

    #[tokio::test]
    async fn lines_across_chunks_and_blank_lines() {
        let got = split(&[b"{\"a\"", b":1}\n\n  \n{\"b\":2}"], 100).await;
        assert_eq!(got, vec![Ok(Bytes::from_static(b"{\"a\":1}")), Ok(Bytes::from_static(b"{\"b\":2}"))]);
    }

    #[tokio::test]
    async fn a_line_over_the_limit_ends_the_stream() {
        let got = split(&[b"12345\n", b"1234567890", b"12345\n", b"ok\n"], 8).await;
        assert_eq!(got, vec![Ok(Bytes::from_static(b"12345")), Err(tonic::Code::ResourceExhausted)]);
        // No newline at all: stopped once the buffer passes the limit, not at the end.
        let endless = futures_util::stream::repeat_with(|| Ok(Bytes::from_static(b"xxxxxxxx")));
        let first: Vec<_> = lines(endless, 64).take(2).collect().await;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].as_ref().unwrap_err().code(), tonic::Code::ResourceExhausted);
    }
}
