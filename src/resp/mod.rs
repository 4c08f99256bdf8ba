//! The client connection: RESP2/RESP3 framing, inline commands, limits.
