//! The channel protocols of exec and attach over WebSocket
//! (`k8s.io/apimachinery/pkg/util/httpstream/wsstream`, KEP-4006): every
//! binary message starts with its channel byte, 0 stdin, 1 stdout, 2 stderr,
//! 3 error (a `metav1.Status` from v4 on), 4 resize (a `TerminalSize` JSON);
//! v5 adds the message `[255, channel]` that closes a channel (stdin).

use serde_json::{json, Value};

/// stdin, client → server.
pub const STDIN: u8 = 0;
/// stdout, server → client.
pub const STDOUT: u8 = 1;
/// stderr, server → client.
pub const STDERR: u8 = 2;
/// The final status, server → client.
pub const ERROR: u8 = 3;
/// Terminal resizes, client → server.
pub const RESIZE: u8 = 4;
/// v5: "close this channel" (the next byte names it).
pub const CLOSE: u8 = 255;

/// A negotiated exec/attach protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `v4.channel.k8s.io`: Status on the error channel, no close signal.
    V4,
    /// `v5.channel.k8s.io`: v4 plus the close signal.
    V5,
}

impl Protocol {
    /// The subprotocol name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
        }
    }
}

/// The first protocol of the client's `Sec-WebSocket-Protocol` offers
/// (comma-separated, possibly in several headers) that we speak; the client
/// lists them in its order of preference.
pub fn negotiate<'a>(offers: impl IntoIterator<Item = &'a str>) -> Option<Protocol> {
    offers
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .find_map(|p| match p {
            "v5.channel.k8s.io" => Some(Protocol::V5),
            "v4.channel.k8s.io" => Some(Protocol::V4),
            _ => None,
        })
}

/// What a client message means.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Bytes for the process's stdin.
    Stdin(&'a [u8]),
    /// A `TerminalSize` JSON document.
    Resize(&'a [u8]),
    /// The client closed its stdin (v5 only).
    CloseStdin,
    /// Nothing to do (an empty message, a channel the client may not write).
    Ignore,
}

/// Decode one binary message from the client.
pub fn decode(proto: Protocol, msg: &[u8]) -> Inbound<'_> {
    match msg {
        [STDIN, rest @ ..] => Inbound::Stdin(rest),
        [RESIZE, rest @ ..] => Inbound::Resize(rest),
        [CLOSE, STDIN, ..] if proto == Protocol::V5 => Inbound::CloseStdin,
        _ => Inbound::Ignore,
    }
}

/// One message for `channel`.
pub fn encode(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(data.len() + 1);
    m.push(channel);
    m.extend_from_slice(data);
    m
}

/// The Status a process's end is reported with on the error channel, as
/// upstream's kubelet writes it: Success, or Failure with reason
/// `NonZeroExitCode` and the code as an `ExitCode` cause.
pub fn exit_status(code: i32, cmd: &[String]) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            cmd.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// A Failure Status for an error that is not the process's exit (the
/// runtime failed), with code 500 as upstream's InternalError.
pub fn internal_error(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_in_client_order() {
        assert_eq!(
            negotiate(["v5.channel.k8s.io, v4.channel.k8s.io"]),
            Some(Protocol::V5)
        );
        assert_eq!(
            negotiate(["channel.k8s.io", "v4.channel.k8s.io,v5.channel.k8s.io"]),
            Some(Protocol::V4)
        );
        assert_eq!(negotiate(["base64.channel.k8s.io"]), None);
        assert_eq!(negotiate([]), None);
    }

    #[test]
    fn decodes_messages() {
        assert_eq!(
            decode(Protocol::V5, &[0, b'h', b'i']),
            Inbound::Stdin(b"hi")
        );
        assert_eq!(
            decode(Protocol::V4, b"\x04{\"Width\":80,\"Height\":24}"),
            Inbound::Resize(b"{\"Width\":80,\"Height\":24}")
        );
        assert_eq!(decode(Protocol::V5, &[255, 0]), Inbound::CloseStdin);
        // v4 has no close signal: the message is meaningless there.
        assert_eq!(decode(Protocol::V4, &[255, 0]), Inbound::Ignore);
        assert_eq!(decode(Protocol::V5, &[]), Inbound::Ignore);
        assert_eq!(decode(Protocol::V5, &[1, b'x']), Inbound::Ignore);
        assert_eq!(encode(STDOUT, b"out"), b"\x01out");
    }

    #[test]
    fn statuses() {
        assert_eq!(
            exit_status(0, &[]),
            json!({"metadata": {}, "status": "Success"})
        );
        let s = exit_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(
            s["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(internal_error("boom")["code"], 500);
    }
}
