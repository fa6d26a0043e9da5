//! Access policies per client (SPEC §4). For now the level each shipped policy needs; the policy
//! engine over `policies/` (issue #6) will replace this table.

use crate::assurance::AssuranceLevel;

/// Policies a client may name.
pub const KNOWN: [&str; 3] = ["portal", "ehealth", "ehealth-professional"];

/// The lowest level a login must have for a client with this policy. Unknown names get the
/// strictest answer (fail closed).
pub fn min_level(policy: &str) -> AssuranceLevel {
    match policy {
        "portal" => AssuranceLevel::Low,
        "ehealth" | "ehealth-professional" => AssuranceLevel::Substantial,
        _ => AssuranceLevel::High,
    }
}
