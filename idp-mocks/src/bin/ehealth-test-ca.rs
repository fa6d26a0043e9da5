//! Generates a test eHealth PKI (CA bundle, CRL, person/organisation/institution certificates)
//! into a directory. Usage: `ehealth-test-ca <dir>`; see `idp_mocks::ehealth_ca`.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use idp_mocks::ehealth_ca::EhealthPki;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        bail!("usage: ehealth-test-ca <dir>");
    };
    if dir == "-h" || dir == "--help" {
        println!("usage: ehealth-test-ca <dir>\nwrites a test eHealth PKI into <dir>");
        return Ok(());
    }
    let dir = PathBuf::from(dir);
    let pki = EhealthPki::generate().context("generating the test eHealth PKI")?;
    let written = pki.write_files(&dir)?;
    println!("wrote {} files to {}; see README.txt", written.len(), dir.display());
    Ok(())
}
