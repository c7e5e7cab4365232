//! Helpers shared by the mail crate's integration tests.
#![allow(dead_code)]

pub mod crafted;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// One HTTP/1.1 request read off `socket`: its bytes (head, blank line, body per
/// `Content-Length`) and where the head ends. `None` when the peer closes before a whole head.
/// The loopback servers here answer raw bytes (Gmail-shaped errors a real HTTP stack would not
/// let a test inject), so they read requests by hand.
pub async fn read_request(socket: &mut TcpStream) -> Option<(Vec<u8>, usize)> {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let (head_end, length) = loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0usize);
            break (end, length);
        }
    };
    while data.len() < head_end + 4 + length {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((data, head_end))
}

/// Intervals as `HH:MM-HH:MM` in their own offset, for comparing with a calendar read by eye.
pub fn hhmm(intervals: &[mailagent_mail::api::Interval]) -> Vec<String> {
    intervals.iter().map(|i| format!("{}-{}", i.start.format("%H:%M"), i.end.format("%H:%M"))).collect()
}
