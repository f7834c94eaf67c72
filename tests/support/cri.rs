//! `cri_pull`: kubelet's image pull as containerd's CRI plugin serves it,
//! `runtime.v1.ImageService/PullImage` over gRPC on the daemon's unix socket. Debian
//! bookworm ships no crictl, so this is a tiny gRPC client: HTTP/2 (`h2`) with one
//! hand-encoded `PullImageRequest` protobuf (cri-api v0.25 `api.proto`: field 1 `image`
//! is an `ImageSpec` whose field 1 is the image string) and the `grpc-status` /
//! `grpc-message` trailers read back (gRPC over HTTP/2, PROTOCOL-HTTP2.md). It knows
//! nothing about regtrust.

use super::Judge;
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;

/// Protobuf: a length-delimited field.
fn field(num: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(num << 3) | 2];
    let mut len = payload.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(payload);
    out
}

/// The gRPC frame of `PullImageRequest{image: ImageSpec{image: image_ref}}`.
fn pull_request(image_ref: &str) -> Vec<u8> {
    let msg = field(1, &field(1, image_ref.as_bytes()));
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    frame
}

/// gRPC's `grpc-message` is percent-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Pull `image_ref` through the CRI on `socket`, anonymously, as kubelet does. `ok` when
/// the call returned `grpc-status: 0`; otherwise `stderr` holds containerd's message.
pub fn cri_pull(socket: &Path, image_ref: &str) -> Judge {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the CRI client");
    let socket = socket.to_path_buf();
    let image_ref = image_ref.to_string();
    let result = rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(60), pull(&socket, &image_ref)).await
    });
    match result {
        Ok(Ok(())) => Judge {
            ok: true,
            stderr: String::new(),
        },
        Ok(Err(message)) => Judge {
            ok: false,
            stderr: message,
        },
        Err(_) => panic!("CRI PullImage did not answer within 60 s"),
    }
}

async fn pull(socket: &Path, image_ref: &str) -> Result<(), String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
    let (client, connection) = h2::client::handshake(stream)
        .await
        .unwrap_or_else(|e| panic!("HTTP/2 handshake on {}: {e}", socket.display()));
    let conn = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.expect("h2 client ready");
    let request = http::Request::builder()
        .method("POST")
        .uri("http://localhost/runtime.v1.ImageService/PullImage")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a gRPC request");
    let (response, mut send) = client
        .send_request(request, false)
        .expect("sending the PullImage request");
    send.send_data(Bytes::from(pull_request(image_ref)), true)
        .expect("sending the PullImage body");
    let response = response.await.map_err(|e| format!("PullImage: {e}"))?;
    let status_of = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .map(|s| {
                let msg = h
                    .get("grpc-message")
                    .and_then(|v| v.to_str().ok())
                    .map(percent_decode)
                    .unwrap_or_default();
                (s, msg)
            })
    };
    // A failure may come as headers only (no body, no trailers).
    let mut status = status_of(response.headers());
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("PullImage body: {e}"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    if status.is_none() {
        let trailers = body
            .trailers()
            .await
            .map_err(|e| format!("PullImage trailers: {e}"))?;
        status = trailers.as_ref().and_then(status_of);
    }
    drop(client);
    conn.abort();
    match status {
        Some((code, _)) if code == "0" => Ok(()),
        Some((code, msg)) => Err(format!("grpc-status {code}: {msg}")),
        None => Err("PullImage answered without a grpc-status".into()),
    }
}
