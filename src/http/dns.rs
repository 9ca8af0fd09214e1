//! The resolver of a strict run's network namespace (§14): every name is the endpoint.
//!
//! It listens on 127.0.0.1:53 inside the namespace (the mount namespace's `resolv.conf`
//! names it) and answers each `A` question with 127.0.0.1, where the endpoint listens on
//! its own port, 80 and 443 and tells hosts apart by `Host` and SNI. Other questions get
//! an empty answer, so clients fall back to IPv4; a malformed query is dropped.

use tokio::net::UdpSocket;
use tokio::sync::watch;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;

/// Answers queries on `socket` until `stop` turns true.
pub async fn serve(socket: UdpSocket, mut stop: watch::Receiver<bool>) {
    let mut buf = [0u8; 1500];
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            got = socket.recv_from(&mut buf) => {
                let Ok((n, peer)) = got else { continue };
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        }
    }
}

/// The reply to one query: its id and question, and 127.0.0.1 for an `A` question.
pub fn answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let questions = u16::from_be_bytes([query[4], query[5]]);
    if questions != 1 {
        return None;
    }
    // The question's name: labels up to the root (no compression in a question).
    let mut at = 12;
    loop {
        let len = *query.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let qclass = u16::from_be_bytes([*query.get(at + 2)?, *query.get(at + 3)?]);
    let end = at + 4;
    let is_a = qtype == TYPE_A && qclass == CLASS_IN;
    let mut reply = Vec::with_capacity(end + 16);
    reply.extend_from_slice(&query[..2]);
    // QR, the query's opcode and RD; RA; NOERROR.
    reply.push(0x80 | (query[2] & 0x79));
    reply.push(0x80);
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&(is_a as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(&query[12..end]);
    if is_a {
        // A pointer to the question's name, A, IN, a TTL of 60 s, 127.0.0.1.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn every_a_question_is_the_loopback() {
        let reply = answer(&query("api.example.com", 1)).unwrap();
        assert_eq!(&reply[..2], &[0xab, 0xcd]);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 1);
        assert_eq!(&reply[reply.len() - 4..], &[127, 0, 0, 1]);
    }

    #[test]
    fn other_questions_get_no_answer_and_garbage_none() {
        let reply = answer(&query("api.example.com", 28)).unwrap();
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0);
        assert_eq!(reply.len(), query("api.example.com", 28).len());
        assert!(answer(&[1, 2, 3]).is_none());
        assert!(answer(&query("x", 1)[..14]).is_none());
    }
}
