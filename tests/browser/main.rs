//! People's experience in a real browser (issue #9): five journeys in Debian's headless Chromium,
//! each page checked for accessibility (axe-core, keyboard, labels, errors, language), a
//! 375 px viewport, and screenshots for the README (`make screenshots`).
//!
//! Driver: **fantoccini over WebDriver** (Debian's `chromium-driver`), not chromiumoxide over
//! CDP. fantoccini is small (hyper + serde; it adds seconds to the build), whereas chromiumoxide
//! brings its generated CDP crate, minutes of compile time on the 2-core machines. What WebDriver
//! lacks, CDP gives through chromedriver's `goog/cdp/execute` passthrough (chrome.rs): Chromium's
//! virtual authenticator (`WebAuthn.addVirtualAuthenticator`) and device metrics for the 375 px
//! check. axe-core runs through WebDriver's script execution, which chromedriver performs over
//! CDP (`Runtime.callFunctionOn`), so the pages' CSP (`script-src 'self'`) needs no exception.
//!
//! Backend: SQLite only; PostgreSQL is covered by the same flows over HTTP in tests/integration.
//! Chromium or chromedriver missing fails these tests (scripts/deps.sh installs both).

// Test code: a failing unwrap is a failing test, and tests read the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

#[path = "../integration/common.rs"]
#[allow(dead_code, unused_imports)]
mod common;

mod checks;
mod chrome;
mod journeys;
mod screenshots;
