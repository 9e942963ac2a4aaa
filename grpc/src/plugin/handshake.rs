//! The go-plugin handshake, as pure functions over the environment (protocol.md §1.3–§1.5):
//! the magic cookie, app-protocol negotiation, and the one stdout line.

use std::path::Path;

/// Nomad's magic cookie key (`plugins/base/plugin.go Handshake`).
pub const MAGIC_COOKIE_KEY: &str = "NOMAD_PLUGIN_MAGIC_COOKIE";
/// Nomad's magic cookie value.
pub const MAGIC_COOKIE_VALUE: &str =
    "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";
/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// Nomad's plugin (app) protocol version, the only one we speak.
pub const APP_PROTOCOL_VERSION: u32 = 2;
/// The host's list of app protocol versions it accepts.
pub const PROTOCOL_VERSIONS_ENV: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// Where go-plugin servers put their socket when set.
pub const UNIX_SOCKET_DIR_ENV: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// What go-plugin's Go servers print when run without the cookie (go-plugin `server.go`).
pub const NOT_A_PLUGIN_MESSAGE: &str =
    "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically\n";

/// Why the plugin refuses to start.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// No cookie, or the wrong one: not launched by Nomad.
    #[error("{MAGIC_COOKIE_KEY} is missing or wrong: not started by a Nomad agent")]
    BadCookie,
    /// The host offered only versions we do not speak.
    #[error(
        "{PROTOCOL_VERSIONS_ENV}={offered:?} does not include plugin protocol version {APP_PROTOCOL_VERSION}, the only one this plugin speaks"
    )]
    UnsupportedProtocol {
        /// The variable's value.
        offered: String,
    },
}

/// Checks the magic cookie.
pub fn check_cookie(value: Option<&str>) -> Result<(), HandshakeError> {
    match value {
        Some(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(HandshakeError::BadCookie),
    }
}

/// The app protocol version to speak. Like go-plugin, an absent or empty list means a legacy
/// host and gets our version; entries that are not numbers are skipped (returned in
/// `ignored` so the caller can log them); a list without 2 is an error.
pub fn negotiate_protocol(offered: Option<&str>) -> Result<Negotiated, HandshakeError> {
    let raw = offered.unwrap_or("").trim();
    if raw.is_empty() {
        return Ok(Negotiated {
            version: APP_PROTOCOL_VERSION,
            ignored: Vec::new(),
        });
    }
    let mut ignored = Vec::new();
    let mut found = false;
    for part in raw.split(',') {
        match part.trim().parse::<u32>() {
            Ok(v) if v == APP_PROTOCOL_VERSION => found = true,
            Ok(_) => {}
            Err(_) => ignored.push(part.trim().to_owned()),
        }
    }
    if found {
        Ok(Negotiated {
            version: APP_PROTOCOL_VERSION,
            ignored,
        })
    } else {
        Err(HandshakeError::UnsupportedProtocol {
            offered: raw.to_owned(),
        })
    }
}

/// The outcome of [`negotiate_protocol`].
#[derive(Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The version to announce.
    pub version: u32,
    /// Entries of the list that were not numbers.
    pub ignored: Vec<String>,
}

/// The handshake line for a unix socket at `socket` (absolute), with its newline:
/// `1|2|unix|<path>|grpc|` (empty server-cert field, no multiplexing field).
pub fn handshake_line(version: u32, socket: &Path) -> String {
    format!(
        "{CORE_PROTOCOL_VERSION}|{version}|unix|{}|grpc|\n",
        socket.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_must_match_exactly() {
        assert_eq!(check_cookie(Some(MAGIC_COOKIE_VALUE)), Ok(()));
        assert_eq!(check_cookie(None), Err(HandshakeError::BadCookie));
        assert_eq!(check_cookie(Some("")), Err(HandshakeError::BadCookie));
        let padded = format!("{MAGIC_COOKIE_VALUE} ");
        assert_eq!(check_cookie(Some(&padded)), Err(HandshakeError::BadCookie));
    }

    #[test]
    fn protocol_two_is_chosen_when_offered() {
        assert_eq!(negotiate_protocol(Some("2")).map(|n| n.version), Ok(2));
        assert_eq!(negotiate_protocol(Some("1, 2,3")).map(|n| n.version), Ok(2));
        let n = negotiate_protocol(Some("x,2"));
        assert_eq!(
            n,
            Ok(Negotiated {
                version: 2,
                ignored: vec!["x".into()]
            })
        );
    }

    #[test]
    fn legacy_host_without_list_gets_two() {
        assert_eq!(negotiate_protocol(None).map(|n| n.version), Ok(2));
        assert_eq!(negotiate_protocol(Some(" ")).map(|n| n.version), Ok(2));
    }

    #[test]
    fn list_without_two_is_refused_and_names_the_variable() {
        let e = negotiate_protocol(Some("1,3")).err();
        assert_eq!(
            e,
            Some(HandshakeError::UnsupportedProtocol {
                offered: "1,3".into()
            })
        );
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("PLUGIN_PROTOCOL_VERSIONS"), "{msg}");
        assert!(negotiate_protocol(Some("abc")).is_err());
    }

    #[test]
    fn line_has_the_go_plugin_shape() {
        let l = handshake_line(2, Path::new("/tmp/d/plugin.sock"));
        assert_eq!(l, "1|2|unix|/tmp/d/plugin.sock|grpc|\n");
        assert_eq!(l.trim_end().split('|').count(), 6);
    }
}
