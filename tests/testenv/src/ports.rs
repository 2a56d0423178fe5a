use std::net::{Ipv4Addr, TcpListener};

use crate::TestEnvError;

/// A loopback port that was free a moment ago. Another process may still take it before we
/// bind it: callers retry the start-up of a process whose port turned out to be taken.
pub fn free_port() -> Result<u16, TestEnvError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(TestEnvError::io("finding a free loopback port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(TestEnvError::io("finding a free loopback port"))
}

/// Whether something accepts connections on loopback `port`.
pub fn is_listening(port: u16) -> bool {
    std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}
