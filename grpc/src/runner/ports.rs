//! Port allocation for the local runner: static ports as given, dynamic ports picked free on
//! loopback (the kernel chooses: bind 127.0.0.1:0). Bridge mode needs Nomad's CNI setup, which
//! the runner does not have, so a bridge group runs in host networking with the `to` port used
//! as the host port; the runner says so.

use super::job::Network;
use std::net::{Ipv4Addr, TcpListener};

/// The loopback address every port is allocated on.
pub const HOST_IP: &str = "127.0.0.1";

/// An allocated port, shaped like Nomad's `AllocatedPortMapping`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocatedPort {
    /// Port label.
    pub label: String,
    /// Host port.
    pub value: u16,
    /// Port the task sees (0 = same as `value`).
    pub to: u16,
    /// Host IP.
    pub host_ip: String,
}

/// The ports of one group, plus notes for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Ports, in file order.
    pub ports: Vec<AllocatedPort>,
    /// Things the runner did differently from Nomad, to print.
    pub notes: Vec<String>,
}

/// Why a port could not be allocated.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A static port is taken.
    #[error("port {label:?}: static port {port} is not free on {HOST_IP}: {source}")]
    InUse {
        /// Label.
        label: String,
        /// Port.
        port: u16,
        /// The bind error.
        source: std::io::Error,
    },
    /// No dynamic port could be had.
    #[error("port {label:?}: no free dynamic port on {HOST_IP}: {source}")]
    NoneFree {
        /// Label.
        label: String,
        /// The bind error.
        source: std::io::Error,
    },
}

/// Allocates the group's ports.
pub fn allocate(network: Option<&Network>) -> Result<Allocation, PortError> {
    let Some(net) = network else {
        return Ok(Allocation::default());
    };
    let mut out = Allocation::default();
    let bridge = net.mode == "bridge";
    if bridge {
        out.notes.push(
            "network mode \"bridge\" needs a Nomad agent with CNI plugins; the local runner uses \
             host networking on 127.0.0.1 instead, with each port's `to` as its host port"
                .to_owned(),
        );
    } else if net.mode != "host" {
        out.notes.push(format!(
            "network mode {:?} is not emulated; the local runner uses host networking",
            net.mode
        ));
    }
    // Hold every listener until all ports are chosen, so two dynamic ports never collide.
    let mut held = Vec::new();
    for p in &net.ports {
        let wanted = if bridge {
            p.to.or(p.static_port)
        } else {
            p.static_port
        };
        let (listener, value) = match wanted {
            Some(port) => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|source| {
                    PortError::InUse {
                        label: p.label.clone(),
                        port,
                        source,
                    }
                })?;
                (l, port)
            }
            None => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| {
                    PortError::NoneFree {
                        label: p.label.clone(),
                        source,
                    }
                })?;
                let port = l
                    .local_addr()
                    .map_err(|source| PortError::NoneFree {
                        label: p.label.clone(),
                        source,
                    })?
                    .port();
                (l, port)
            }
        };
        held.push(listener);
        out.ports.push(AllocatedPort {
            label: p.label.clone(),
            value,
            to: if bridge { 0 } else { p.to.unwrap_or(0) },
            host_ip: HOST_IP.to_owned(),
        });
    }
    drop(held);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::job::PortSpec;

    fn net(mode: &str, ports: Vec<PortSpec>) -> Network {
        Network {
            mode: mode.into(),
            ports,
        }
    }

    #[test]
    fn dynamic_ports_are_distinct_and_free_static_ports_are_kept() {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("probe");
        let free = probe.local_addr().expect("addr").port();
        drop(probe);
        let n = net(
            "host",
            vec![
                PortSpec {
                    label: "a".into(),
                    static_port: None,
                    to: None,
                },
                PortSpec {
                    label: "b".into(),
                    static_port: None,
                    to: None,
                },
                PortSpec {
                    label: "c".into(),
                    static_port: Some(free),
                    to: None,
                },
            ],
        );
        let a = allocate(Some(&n)).expect("allocate");
        assert_eq!(a.ports.len(), 3);
        assert_ne!(a.ports[0].value, a.ports[1].value);
        assert_eq!(a.ports[2].value, free);
        assert!(a.notes.is_empty());
        // Released again: the task can bind them.
        TcpListener::bind((Ipv4Addr::LOCALHOST, a.ports[0].value)).expect("rebind");
    }

    #[test]
    fn a_taken_static_port_is_an_error_naming_it() {
        let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("busy");
        let port = busy.local_addr().expect("addr").port();
        let n = net(
            "host",
            vec![PortSpec {
                label: "http".into(),
                static_port: Some(port),
                to: None,
            }],
        );
        let e = allocate(Some(&n)).expect_err("in use");
        assert!(
            e.to_string()
                .contains(&format!("port \"http\": static port {port}")),
            "{e}"
        );
    }

    #[test]
    fn bridge_mode_falls_back_to_host_networking_with_a_note() {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("probe");
        let free = probe.local_addr().expect("addr").port();
        drop(probe);
        let n = net(
            "bridge",
            vec![PortSpec {
                label: "http".into(),
                static_port: None,
                to: Some(free),
            }],
        );
        let a = allocate(Some(&n)).expect("allocate");
        assert_eq!(a.ports[0].value, free);
        assert_eq!(a.ports[0].to, 0);
        assert!(a.notes[0].contains("bridge"));
    }
}
