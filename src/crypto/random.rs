//! Random bytes from the operating system (getrandom(2)).

/// Fills `buf` with random bytes. Failure of the OS generator is not
/// recoverable: continuing would risk nonce reuse, so we abort loudly.
pub fn fill(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random generator failed: {e}");
    }
}

/// Returns `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    fill(&mut b);
    b
}
