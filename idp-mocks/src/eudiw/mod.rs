//! EU Digital Identity Wallet mocks (SPEC §12): a PID provider ([`provider`]) and a test
//! wallet ([`wallet`]) holding the demo citizens' PIDs, as SD-JWT VC and as mdoc ([`mdoc`]).

pub mod jose;
pub mod mdoc;
pub mod provider;
pub mod wallet;
