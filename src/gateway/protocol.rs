//! Newline-delimited JSON-RPC 2.0: bounded line reading, request parsing, error replies.

use serde_json::{json, Value};
use std::io::{self, BufRead};

/// Requests longer than this are refused (and their rest discarded).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const UNRECORDED_CALL: i64 = -32001;
pub const NOT_ALLOWED: i64 = -32002;
/// A valid request the run's state refuses (a second `run/close`).
pub const REFUSED: i64 = -32000;

#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// One line off the wire: its text (`()` from [`read_line_into`], which leaves it in the
/// caller's buffer).
#[derive(Debug)]
pub enum Line<T = Vec<u8>> {
    Text(T),
    /// Longer than [`MAX_LINE_BYTES`]; its bytes were discarded up to the newline.
    TooLong,
    Eof,
}

/// Reads one `\n`-terminated line, never holding more than the cap in memory.
pub fn read_line(reader: &mut impl BufRead) -> io::Result<Line> {
    let mut buf = Vec::new();
    Ok(match read_line_into(reader, &mut buf)? {
        Line::Text(()) => Line::Text(buf),
        Line::TooLong => Line::TooLong,
        Line::Eof => Line::Eof,
    })
}

/// [`read_line`] into a buffer the caller keeps (it is cleared first), so a connection
/// reads every request without allocating.
pub fn read_line_into(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line<()>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if too_long {
                Line::TooLong
            } else if buf.is_empty() {
                Line::Eof
            } else {
                Line::Text(())
            });
        }
        let (chunk, done) = match memchr_newline(available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                *buf = Vec::new();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(())
            });
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

/// A parsed request. `id` is `None` for a notification (no reply is sent).
#[derive(Debug)]
pub struct Request {
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// The error reply to a line that is not a valid request, with the id when known.
#[derive(Debug)]
pub struct BadRequest {
    pub id: Value,
    pub error: RpcError,
}

/// Parses a line into a request, or the error reply to send.
pub fn parse_request(line: &[u8]) -> Result<Request, Box<BadRequest>> {
    let bad = |id: Value, error: RpcError| Box::new(BadRequest { id, error });
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        bad(
            Value::Null,
            RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(bad(
            Value::Null,
            RpcError::new(
                INVALID_REQUEST,
                "invalid request: expected one JSON-RPC 2.0 request object per line (batches are not supported)",
            ),
        ));
    };
    let id = obj.remove("id");
    if let Some(id) = &id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Err(bad(
                Value::Null,
                RpcError::new(
                    INVALID_REQUEST,
                    "invalid request: `id` must be a string or a number",
                ),
            ));
        }
    }
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad(
            reply_id,
            RpcError::new(
                INVALID_REQUEST,
                "invalid request: `jsonrpc` must be \"2.0\"",
            ),
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => {
            return Err(bad(
                reply_id,
                RpcError::new(
                    INVALID_REQUEST,
                    "invalid request: `method` must be a string",
                ),
            ))
        }
    };
    let params = obj.remove("params").unwrap_or_else(|| json!({}));
    Ok(Request { id, method, params })
}

pub fn success(id: &Value, result: &serde_json::value::RawValue) -> Vec<u8> {
    let mut out = Vec::new();
    write_success(&mut out, id, result);
    out
}

/// Appends the success reply line: `{"jsonrpc":"2.0","id":…,"result":…}` and `\n`, the
/// result's text exactly as given.
pub fn write_success(out: &mut Vec<u8>, id: &Value, result: &serde_json::value::RawValue) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    serde_json::to_writer(&mut *out, id).expect("ids serialize");
    out.extend_from_slice(b",\"result\":");
    // A recorded result is kept as the cassette wrote it: one line on the wire.
    crate::json::minify_into(result.get(), out);
    out.extend_from_slice(b"}\n");
}

pub fn failure(id: &Value, err: &RpcError) -> Vec<u8> {
    let mut e = json!({"code": err.code, "message": err.message});
    if let Some(data) = &err.data {
        e["data"] = data.clone();
    }
    encode(json!({"jsonrpc": "2.0", "id": id, "error": e}))
}

fn encode(v: Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(&v).expect("responses serialize");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_lines_are_discarded_to_the_newline() {
        let mut data = vec![b'x'; MAX_LINE_BYTES + 10];
        data.extend_from_slice(b"\n{\"a\":1}\n");
        let mut r = io::BufReader::new(&data[..]);
        assert!(matches!(read_line(&mut r).unwrap(), Line::TooLong));
        match read_line(&mut r).unwrap() {
            Line::Text(t) => assert_eq!(t, b"{\"a\":1}"),
            other => panic!("expected the next line, got {other:?}"),
        }
        assert!(matches!(read_line(&mut r).unwrap(), Line::Eof));
    }

    #[test]
    fn success_replies_are_the_derived_serialization() {
        #[derive(serde::Serialize)]
        struct Success<'a> {
            jsonrpc: &'static str,
            id: &'a Value,
            result: &'a serde_json::value::RawValue,
        }
        let result = serde_json::value::RawValue::from_string(
            r#"{"content":[{"type":"text","text":"é \"x\""}],"n":2.50}"#.into(),
        )
        .unwrap();
        for id in [json!(1), json!("a\"b"), json!(null), json!(1.5)] {
            let mut derived = serde_json::to_vec(&Success {
                jsonrpc: "2.0",
                id: &id,
                result: &result,
            })
            .unwrap();
            derived.push(b'\n');
            assert_eq!(success(&id, &result), derived);
        }
    }

    #[test]
    fn a_kept_buffer_reads_line_after_line() {
        let mut r = io::BufReader::with_capacity(4, &b"{\"a\":1}\n\nlast"[..]);
        let mut buf = b"stale".to_vec();
        assert!(matches!(
            read_line_into(&mut r, &mut buf).unwrap(),
            Line::Text(())
        ));
        assert_eq!(buf, b"{\"a\":1}");
        assert!(matches!(
            read_line_into(&mut r, &mut buf).unwrap(),
            Line::Text(())
        ));
        assert_eq!(buf, b"");
        assert!(matches!(
            read_line_into(&mut r, &mut buf).unwrap(),
            Line::Text(())
        ));
        assert_eq!(buf, b"last");
        assert!(matches!(
            read_line_into(&mut r, &mut buf).unwrap(),
            Line::Eof
        ));
    }

    #[test]
    fn requests_are_validated() {
        assert_eq!(parse_request(b"nope").unwrap_err().error.code, PARSE_ERROR);
        assert_eq!(
            parse_request(b"[1]").unwrap_err().error.code,
            INVALID_REQUEST
        );
        let bad = parse_request(br#"{"id":7,"method":"x"}"#).unwrap_err();
        assert_eq!((bad.id, bad.error.code), (json!(7), INVALID_REQUEST));
        let ok = parse_request(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#).unwrap();
        assert_eq!(ok.method, "tools/list");
        assert_eq!(ok.params, json!({}));
    }
}
