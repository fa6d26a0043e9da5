//! INSZ parser (src/identity.rs): any text either fails with a rule or gives an INSZ whose
//! canonical form is 11 digits, parses again to itself, and formats and masks without panic.
#![no_main]

use cozo_broker::identity::Insz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(insz) = Insz::parse(text) else { return };
    let s = insz.as_str();
    assert_eq!(s.len(), 11);
    assert!(s.bytes().all(|b| b.is_ascii_digit()));
    let again = Insz::parse(s).expect("the canonical form parses");
    assert_eq!(again.as_str(), s);
    let formatted = insz.formatted();
    assert_eq!(Insz::parse(&formatted).expect("the formatted form parses").as_str(), s);
    let _ = (insz.masked(), insz.kind(), insz.is_bis());
});
