//! The `cozo-broker` command (SPEC §1): parse, run, exit code. The commands are in [`cli`].

mod cli;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match cli::Cli::parse_or_exit() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let out = cli.output();
    out.exit(cli::run(cli).await)
}
