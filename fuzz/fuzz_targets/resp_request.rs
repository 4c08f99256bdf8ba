//! The client request parser (multibulk and inline) on arbitrary bytes.
//!
//! Input: one control byte, then the byte stream a client sends. The control byte picks
//! the limits (Redis's defaults or small ones, so every limit is reachable), whether the
//! client must still authenticate, and how the stream is cut into reads.
//!
//! Checks: no panic; the requests do not depend on how the stream is cut (fed whole, a
//! byte at a time, or in pseudo-random pieces), except that a line still without its end
//! may hit the inline limit sooner in pieces, as in Redis; the read buffer never grows
//! far beyond the data received, whatever length a header claims.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use raftlock::config::RespLimits;
use raftlock::resp::{ProtocolError, RequestParser};

/// What one way of feeding the stream gave: the requests, then the error, if any.
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Vec<Bytes>>,
    error: Option<ProtocolError>,
}

fn parse(limits: &RespLimits, auth_required: bool, stream: &[u8], cuts: &[usize]) -> Outcome {
    let mut parser = RequestParser::new(limits.clone());
    parser.set_auth_required(auth_required);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut received = 0;
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[start..end]);
        received += end - start;
        start = end;
        loop {
            let result = parser.next_request(&mut buf);
            // The parser may reserve room for a big bulk, but only as fast as data
            // arrives: at most about what was received, or one 1 MiB step.
            assert!(
                buf.capacity() <= 2 * received + 2 * 1024 * 1024,
                "buffer capacity {} after {received} bytes received",
                buf.capacity()
            );
            match result {
                Ok(Some(args)) => {
                    assert!(
                        !args.is_empty(),
                        "an empty request is skipped, not returned"
                    );
                    requests.push(args);
                }
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        requests,
                        error: Some(error),
                    }
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
    }
}

/// Cut points from a tiny xorshift generator, pieces of 1 to 16 bytes.
fn pseudo_random_cuts(seed: u8, len: usize) -> Vec<usize> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut cuts = Vec::new();
    let mut at = 0;
    loop {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        at += 1 + (state % 16) as usize;
        if at >= len {
            return cuts;
        }
        cuts.push(at);
    }
}

/// Errors that depend on how much of an unended line has arrived, not on the bytes.
fn depends_on_reads(error: &ProtocolError) -> bool {
    error.0.starts_with("Protocol error: too big")
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let limits = if control & 1 == 0 {
        RespLimits::default()
    } else {
        RespLimits {
            max_bulk_bytes: 64,
            max_multibulk_len: 8,
            max_inline_bytes: 32,
        }
    };
    let auth_required = control & 2 != 0;
    let whole = parse(&limits, auth_required, stream, &[]);
    let byte_by_byte: Vec<usize> = (1..stream.len()).collect();
    let random = pseudo_random_cuts(control >> 2, stream.len());
    for cuts in [byte_by_byte, random] {
        let pieces = parse(&limits, auth_required, stream, &cuts);
        match &pieces.error {
            Some(error) if depends_on_reads(error) => assert!(
                whole.requests.starts_with(&pieces.requests),
                "in pieces {pieces:?}, whole {whole:?}"
            ),
            _ => assert_eq!(pieces, whole, "in pieces (left) and whole (right)"),
        }
    }
});
