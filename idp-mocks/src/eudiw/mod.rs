//! EU Digital Identity Wallet mocks (SPEC §12): a PID provider ([`provider`]) and a test
//! wallet ([`wallet`]) holding the demo citizens' PIDs.

pub mod jose;
pub mod provider;
pub mod wallet;
