//! The journal's segment reader, as opening the journal runs it: arbitrary
//! bytes give whole records, a torn tail, or a corruption error; never a
//! panic, and no command at position 0.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match runtime::scan_segment(data, |pair, position, _cmd| {
        assert!(position > 0, "position 0 of {pair}");
    }) {
        Ok(whole) => assert!(whole <= data.len()),
        Err((at, _)) => assert!(at < data.len()),
    }
});
