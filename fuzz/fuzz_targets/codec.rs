//! The wire codec: arbitrary bytes decode to an error or a value, and a
//! value that decoded encodes again and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{Command, Event};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    if let Ok(value) = proto::decode::<T>(data) {
        let bytes = proto::encode(&value).expect("a decoded value encodes");
        assert_eq!(proto::decode::<T>(&bytes).as_ref(), Ok(&value));
    }
    if let Ok(values) = proto::decode_run::<T>(data) {
        let mut bytes = Vec::new();
        for v in &values {
            proto::encode_into(v, &mut bytes).expect("a decoded value encodes");
        }
        assert_eq!(proto::decode_run::<T>(&bytes), Ok(values));
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Command>(data);
    round_trip::<Event>(data);
});
