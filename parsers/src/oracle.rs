//! For tests that hold a fast reader to the plain one it replaced: inputs made only of the
//! bytes that steer the reader, so that proptest reaches its branches in a few hundred cases
//! where random bytes would almost never form them.

use proptest::strategy::Strategy;

/// Byte strings of up to `max` bytes, each byte one of `alphabet`.
pub(crate) fn bytes_of(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(alphabet), 0..=max)
}
