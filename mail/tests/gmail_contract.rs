//! The Gmail provider against Gmail's documented JSON (developers.google.com/gmail/api/reference),
//! served from loopback: the production `format=metadata` path with the list headers the emulator
//! drops (`List-Unsubscribe`, `List-Unsubscribe-Post`, `List-Id`, `Authentication-Results`,
//! `DKIM-Signature`), `getProfile`, paging, a 404 on an expired history id, a 429 with
//! `Retry-After`, and the JSON send.

use std::sync::{Arc, Mutex};

use mailagent_mail::api::*;
use mailagent_mail::message::NEEDED_HEADERS;
use mailagent_mail::provider::gmail::{Gmail, GmailConfig};
use mailagent_mail::provider::{History, MailProvider};
use mailagent_mail::{AssistantOptions, provider_assistant};
use tokio::io::AsyncWriteExt;

mod support;

type Log = Arc<Mutex<Vec<(String, String)>>>;

/// Serves `answer(request line, body) -> (status, extra headers, body)`, one request per connection.
async fn server(answer: impl Fn(&str, &str) -> (u16, String, String) + Send + Sync + 'static) -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (answer, seen) = (answer.clone(), seen.clone());
            tokio::spawn(async move {
                let Some((data, end)) = support::read_request(&mut socket).await else { return };
                let text = String::from_utf8_lossy(&data).into_owned();
                let line = text.lines().next().unwrap_or_default().to_string();
                let body = text[end + 4..].to_string();
                assert!(text.to_ascii_lowercase().contains("authorization: bearer test-token"), "bearer token sent");
                seen.lock().unwrap().push((line.clone(), body.clone()));
                let (status, headers, reply) = answer(&line, &body);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}connection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, log)
}

// Shapes from the reference pages of users.messages.get (format=metadata), users.messages.list,
// users.getProfile and users.history.list.
fn metadata(id: &str) -> String {
    let (from, extra) = match id {
        "m1" | "m2" => (
            "Weekly News <news@news.example.com>",
            r#",{"name":"List-Id","value":"Weekly News <weekly.news.example.com>"},
               {"name":"List-Unsubscribe","value":"<https://news.example.com/u/opaque>, <mailto:leave@news.example.com?subject=unsubscribe>"},
               {"name":"List-Unsubscribe-Post","value":"List-Unsubscribe=One-Click"},
               {"name":"Authentication-Results","value":"mx.google.com; dkim=pass header.i=@news.example.com header.s=s1; spf=pass; dmarc=pass"},
               {"name":"DKIM-Signature","value":"v=1; a=rsa-sha256; d=news.example.com; s=s1; h=from:subject:date:list-unsubscribe:list-unsubscribe-post; bh=x; b=y"},
               {"name":"Precedence","value":"list"}"#,
        ),
        _ => ("Ann <ann@friends.example>", ""),
    };
    format!(
        r#"{{"id":"{id}","threadId":"{id}","labelIds":["INBOX","UNREAD"],"snippet":"...","historyId":"4200","internalDate":"1763888000000","sizeEstimate":4000,
        "payload":{{"partId":"","mimeType":"multipart/alternative","filename":"","headers":[
          {{"name":"From","value":"{from}"}},{{"name":"Subject","value":"issue {id}"}},{{"name":"Date","value":"Mon, 23 Nov 2026 10:00:00 +0000"}}{extra}]}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_path_paging_history_404_retry_and_send() {
    let gets = Arc::new(Mutex::new(0u32));
    let counted = gets.clone();
    let (url, log) = server(move |line, body| {
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
        if path.contains("/profile") {
            return (200, String::new(), r#"{"emailAddress":"owner@mail.example","messagesTotal":3,"threadsTotal":3,"historyId":"4200"}"#.into());
        }
        if path.contains("/messages?") {
            return if path.contains("pageToken=p2") {
                (200, String::new(), r#"{"messages":[{"id":"m3","threadId":"m3"}],"resultSizeEstimate":3}"#.into())
            } else {
                (200, String::new(), r#"{"messages":[{"id":"m1","threadId":"m1"},{"id":"m2","threadId":"m2"}],"nextPageToken":"p2","resultSizeEstimate":3}"#.into())
            };
        }
        if path.contains("/history?") {
            return (404, String::new(), r#"{"error":{"code":404,"message":"Requested entity was not found.","errors":[{"message":"Requested entity was not found.","domain":"global","reason":"notFound"}],"status":"NOT_FOUND"}}"#.into());
        }
        if path.contains("/messages/send") {
            assert!(body.contains("\"raw\""), "JSON send with a raw field: {body}");
            return (200, String::new(), r#"{"id":"sent1","threadId":"sent1","labelIds":["SENT"]}"#.into());
        }
        if let Some(rest) = path.split("/messages/").nth(1) {
            let id = rest.split('?').next().unwrap().to_string();
            let mut n = counted.lock().unwrap();
            *n += 1;
            if *n == 1 {
                return (429, "retry-after: 1\r\n".into(), r#"{"error":{"code":429,"message":"User-rate limit exceeded.","errors":[{"reason":"userRateLimitExceeded"}]}}"#.into());
            }
            return (200, String::new(), metadata(&id));
        }
        (404, String::new(), "{}".into())
    })
    .await;
    let config = GmailConfig { base_url: url.clone(), root_url: url, ..GmailConfig::default() };
    let gmail = Arc::new(Gmail::new(config, "test-token".to_string()).unwrap());
    let state = tempfile::tempdir().unwrap();
    let assistant = provider_assistant(Box::new(gmail.clone()), state.path(), AssistantOptions::default()).unwrap();

    let scan = assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!((scan.total_messages, scan.fetched_messages), (3, 3));
    // getProfile 1 + two list pages 10 + three gets 15 + one retried get 5.
    assert_eq!(scan.quota_units, 1 + 10 + 15 + 5);
    assert_eq!(gmail.retries(), 1);
    let newsletter = scan.messages.iter().find(|m| m.id == "m1").unwrap();
    assert_eq!(newsletter.class, MessageClass::Newsletter, "{newsletter:?}");

    let requests = log.lock().unwrap().clone();
    let get = requests.iter().map(|(line, _)| line).find(|l| l.contains("/messages/m1?")).unwrap();
    assert!(get.contains("format=metadata"), "{get}");
    for header in NEEDED_HEADERS {
        assert!(get.contains(&format!("metadataHeaders={header}")), "{header} requested: {get}");
    }
    let list = requests.iter().map(|(line, _)| line).find(|l| l.contains("/messages?")).unwrap();
    assert!(list.contains("labelIds=INBOX") && list.contains("maxResults=500"), "{list}");

    let found = assistant.unsubscribe_candidates(CandidatesRequest::default()).await.unwrap();
    let weekly = &found.candidates[0];
    assert_eq!(weekly.key, "weekly.news.example.com");
    assert_eq!(weekly.message_count, 2);
    assert_eq!(weekly.methods[0].kind, MethodKind::OneClick);
    assert!(weekly.dkim.covers_unsubscribe, "{weekly:?}");

    // The stored history id is now too old: Gmail answers 404 and the scan starts over.
    let second = assistant.scan(ScanRequest::default()).await.unwrap();
    assert!(!second.incremental && second.full_scan_reason.as_deref().is_some_and(|r| r.contains("expired")));
    assert_eq!(second.fetched_messages, 0, "known messages are not fetched again");
    assert_eq!(gmail.history("4200").await.unwrap(), History::Expired);

    assert_eq!(gmail.owner().await.unwrap().as_deref(), Some("owner@mail.example"));
    assert_eq!(gmail.send_raw(b"From: a@b.example\r\n\r\nx".to_vec()).await.unwrap(), "sent1");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_reach_the_caller_as_reconsent_not_retry_later() {
    // Regression (issue 8, defect 7): every provider failure became the same "retry later".
    for (status, reason) in [(401, "authError"), (403, "insufficientPermissions")] {
        let (url, _) = server(move |_, _| {
            let body = format!(r#"{{"error":{{"code":{status},"message":"no","errors":[{{"reason":"{reason}"}}]}}}}"#);
            (status, String::new(), body)
        })
        .await;
        let config = GmailConfig { base_url: url.clone(), root_url: url, ..GmailConfig::default() };
        let gmail = Gmail::new(config, "test-token".to_string()).unwrap();
        let state = tempfile::tempdir().unwrap();
        let assistant = provider_assistant(Box::new(gmail), state.path(), AssistantOptions::default()).unwrap();
        let error = assistant.scan(ScanRequest::default()).await.unwrap_err();
        match status {
            401 => assert!(matches!(&error, DomainError::ReconsentRequired(m) if m.contains("re-consent")), "{error}"),
            _ => assert!(matches!(&error, DomainError::ProviderRejected(m) if m.contains("403")), "{error}"),
        }
        assert!(!error.is_caller_fault());
    }
}
