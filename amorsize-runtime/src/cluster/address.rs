//! The broker's address as the user gave it (`nats://user:pass@host:port`,
//! `tls://…`, several comma-separated), split into what may be shown (the address
//! without credentials) and what never is (user, password, token). Every text that
//! leaves the cluster backend for a log, a plan or an error goes through
//! [`Address::redact`].
//!
//! Hand-written rather than a URL crate: the client takes the address without its
//! credentials and the credentials apart, so only the `userinfo@` part is cut out here.

use std::fmt;

/// A broker address with its credentials taken out.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Address {
    /// The servers, comma-separated, without credentials: safe to show.
    servers: String,
    /// `user:password`, or a token, from the address.
    credentials: Option<Credentials>,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    UserPassword { user: String, password: String },
    Token(String),
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl fmt::Display for Address {
    /// The servers, with `***@` where the address had credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.credentials.is_none() {
            return f.write_str(&self.servers);
        }
        for (i, server) in self.servers.split(',').enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match server.split_once("://") {
                Some((scheme, rest)) => write!(f, "{scheme}://***@{rest}")?,
                None => write!(f, "***@{server}")?,
            }
        }
        Ok(())
    }
}

impl Address {
    /// Parses an address; `Err` says what is wrong without repeating the credentials.
    pub(crate) fn parse(text: &str) -> Result<Address, String> {
        let mut servers = Vec::new();
        let mut credentials = None;
        for server in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (scheme, rest) = match server.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, server),
            };
            if let Some(scheme) = scheme
                && !matches!(scheme, "nats" | "tls" | "ws" | "wss")
            {
                return Err(format!(
                    "the broker address has scheme `{scheme}://`; expected nats://, tls://, \
                     ws:// or wss://"
                ));
            }
            let host = match rest.rsplit_once('@') {
                Some((info, host)) => {
                    let c = match info.split_once(':') {
                        Some((user, password)) => Credentials::UserPassword {
                            user: percent_decoded(user),
                            password: percent_decoded(password),
                        },
                        None => Credentials::Token(percent_decoded(info)),
                    };
                    if credentials.as_ref().is_some_and(|known| *known != c) {
                        return Err("the broker address gives different credentials for \
                                    different servers"
                            .into());
                    }
                    credentials = Some(c);
                    host
                }
                None => rest,
            };
            let host = host.trim_end_matches('/');
            if host.is_empty() || host.contains('/') {
                return Err(format!(
                    "the broker address must be HOST:PORT, with an optional scheme, not \
                     `{}`",
                    scheme.map_or(String::new(), |s| format!("{s}://")) + "…"
                ));
            }
            servers.push(match scheme {
                Some(s) => format!("{s}://{host}"),
                None => format!("nats://{host}"),
            });
        }
        if servers.is_empty() {
            return Err("the broker address is empty".into());
        }
        Ok(Address {
            servers: servers.join(","),
            credentials,
        })
    }

    /// The servers without credentials, as the client connects to them.
    pub(crate) fn servers(&self) -> &str {
        &self.servers
    }

    /// The credentials the address carried.
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `text` with every secret of this address (password, token, and the user with
    /// either) replaced by `***`: for any message that may quote what the client said.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        let secrets: Vec<&str> = match &self.credentials {
            Some(Credentials::UserPassword { password, .. }) => vec![password],
            Some(Credentials::Token(token)) => vec![token],
            None => Vec::new(),
        };
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            out = out.replace(secret, "***");
        }
        out
    }
}

/// `%XX` escapes decoded (a password may hold `@` or `:` written as `%40`, `%3A`);
/// anything that is not a valid escape stays as written.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_and_never_shown() {
        let a = Address::parse("nats://alice:s3cr%40t@10.0.0.1:4222").unwrap();
        assert_eq!(a.servers(), "nats://10.0.0.1:4222");
        assert_eq!(a.to_string(), "nats://***@10.0.0.1:4222");
        assert_eq!(format!("{a:?}"), "Address(nats://***@10.0.0.1:4222)");
        assert!(matches!(
            a.credentials(),
            Some(Credentials::UserPassword { user, password }) if user == "alice" && password == "s3cr@t"
        ));
        assert_eq!(a.redact("auth failed for s3cr@t"), "auth failed for ***");

        let t = Address::parse("tls://tok3n@h:1,tls://tok3n@g:2").unwrap();
        assert_eq!(t.servers(), "tls://h:1,tls://g:2");
        assert_eq!(t.to_string(), "tls://***@h:1,tls://***@g:2");
        assert!(matches!(t.credentials(), Some(Credentials::Token(x)) if x == "tok3n"));

        let plain = Address::parse("127.0.0.1:4222").unwrap();
        assert_eq!(plain.to_string(), "nats://127.0.0.1:4222");
        assert!(plain.credentials().is_none());
    }

    #[test]
    fn bad_addresses_are_refused_without_their_secrets() {
        for bad in ["", "http://u:pw@h:1", "nats://u:pw@h:1/path", "nats://"] {
            let e = Address::parse(bad).unwrap_err();
            assert!(!e.contains("pw"), "{bad}: {e}");
        }
        assert!(Address::parse("nats://a:b@h:1,nats://c:d@g:2").is_err());
    }
}
